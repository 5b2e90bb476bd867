import type { IdentityKey } from "../identity-key.js";
import {
  conflictingKinds,
  identityOf,
  sharesStrongIdentifier,
  unionIdentity,
  type CanonicalRecord,
  type Identity,
} from "../record.js";
import type { Tombstone } from "./decision.js";
import { deviceKey, type Reader } from "./reader.js";
import type { UpdateContext } from "./update-context.js";

/** What becomes of the update's own id when it is not the canonical one. */
export interface OwnIdOutcome {
  readonly tombstone?: Tombstone;
  /** The id was unknown: its device-id binding is created as a redirect. */
  readonly redirect?: IdentityKey;
  /** The id already redirects here: it belongs in the index (and in step with the identity). */
  readonly listedRedirect?: IdentityKey;
  /** The id names another device that is this one (a shared strong identifier): a merge. */
  readonly mergeFrom?: { readonly id: string; readonly record: CanonicalRecord | undefined };
  readonly trace?: "redirect" | "already_redirects" | "merged" | "kept_apart" | "pinned_apart";
}

/**
 * The update's own id: a redirect, a merge, or nothing. A tombstone only for an id that was unknown,
 * already redirects to the canonical id, or whose device shares a strong identifier (ADR 0010).
 */
export function ownIdOutcome(
  c: UpdateContext,
  reader: Reader,
  canonical: string,
  baseIdentity: Identity,
  vetoed: ReadonlySet<string>,
): OwnIdOutcome {
  const { u } = c;
  if (u.deviceId === "" || u.deviceId === canonical) return {};
  const tombstone = { device_id: u.deviceId, merged_into: canonical };
  const own = c.live(reader.get(deviceKey(u.deviceId)));
  if (!own) return { tombstone, redirect: deviceKey(u.deviceId), trace: "redirect" };
  if (own.record.canonicalDeviceId === canonical)
    return { tombstone, listedRedirect: deviceKey(u.deviceId), trace: "already_redirects" };
  const z = own.record.canonicalDeviceId;
  const zRecord = c.live(reader.get(deviceKey(z)))?.record ?? own.record;
  reader.checkpoint();
  // An operator set this device apart (a manual split or pin, ADR 0016): a sighting does not merge it back.
  if (zRecord.pin || own.record.pin) return { trace: "pinned_apart" };
  const zIdentity = identityOf(zRecord);
  const compatible = conflictingKinds(zIdentity, unionIdentity(baseIdentity, c.identity, false)).every(
    (x) => x === "mac",
  );
  if (!vetoed.has(z) && sharesStrongIdentifier(zIdentity, c.identity) && compatible) {
    return { tombstone, mergeFrom: { id: z, record: zRecord }, trace: "merged" };
  }
  return { trace: "kept_apart" };
}
