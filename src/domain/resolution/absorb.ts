import { keyId } from "../identity-key.js";
import { isAddressKind } from "../identity-kind.js";
import { conflictingKinds, identityOf, unionIdentity, type CanonicalRecord, type Identity } from "../record.js";
import type { Candidate } from "./choose-device.js";
import { deviceKey, type Reader } from "./reader.js";
import type { UpdateContext } from "./update-context.js";

/** A provisional device that the known device absorbs (ADR 0010). */
export interface Absorption {
  readonly id: string;
  readonly record: CanonicalRecord;
}

/** Why a provisional device at the update's address was not absorbed. */
export type AbsorptionRefusal = { readonly deviceId: string; readonly reason: "two_places" | "veto" };

/**
 * An asserting update that named a known device by a strong identifier or a stable id, observed at
 * the address of a provisional device: that provisional device was this one all along, seen before
 * its own source reported it. Refused when the known device was seen asserted at another address
 * after the provisional one first appeared (it cannot have been in two places), or when the
 * provisional device's identity contradicts the update's (the merge veto).
 */
export function provisionalToAbsorb(
  c: UpdateContext,
  reader: Reader,
  chosen: Candidate | undefined,
  deviceRecord: CanonicalRecord | undefined,
  knownIdentity: Identity,
  currentAddresses: ReadonlySet<string>,
): { absorbed?: Absorption; refused?: AbsorptionRefusal } {
  if (!c.asserting || !chosen || !deviceRecord) return {};
  if (!(chosen.kind !== "device-id" ? !isAddressKind(chosen.kind) : c.stableId)) return {};
  const addresses = c.ranked.filter((k) => k.kind === "partition-ip" || (k.kind === "ip" && c.u.partition === ""));
  const held = addresses
    .map((k) => c.live(reader.get(k)))
    .find((b) => b && b.record.canonicalDeviceId !== chosen.deviceId && (b.record.provisionalSinceMs ?? 0) > 0);
  if (!held) return {};
  const id = held.record.canonicalDeviceId;
  const p = c.live(reader.get(deviceKey(id)));
  reader.checkpoint();
  if (!p || !(p.record.provisionalSinceMs! > 0)) return {};
  // An operator's decision on the provisional device (a pin, ADR 0016) keeps it as it is.
  if (p.record.pin) return {};
  if (conflictingKinds(identityOf(p.record), unionIdentity(knownIdentity, c.identity, false)).length > 0)
    return { refused: { deviceId: id, reason: "veto" } };
  // The known device's latest asserted sighting at another address. Address bindings are refreshed
  // only every half expiry, so this can be older than the real sighting: the guard then absorbs where
  // it should not only if the known device was really seen elsewhere within that period (ADR 0010).
  let lastElsewhere = Number.NEGATIVE_INFINITY;
  for (const e of deviceRecord.keys) {
    if (!isAddressKind(e.kind) || e.sources.length === 0 || currentAddresses.has(keyId(e))) continue;
    const b = c.live(reader.get(e));
    if (b && b.record.canonicalDeviceId === chosen.deviceId)
      lastElsewhere = Math.max(lastElsewhere, b.record.updatedAtMs);
  }
  if (p.record.provisionalSinceMs! < lastElsewhere) return { refused: { deviceId: id, reason: "two_places" } };
  return { absorbed: { id, record: p.record } };
}
