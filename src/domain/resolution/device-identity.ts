import type { IdentityKey } from "../identity-key.js";
import { identityOf, unionIdentity, type CanonicalRecord, type Identity } from "../record.js";
import type { UpdateContext } from "./update-context.js";

/**
 * The device's identity after the update: what it knew, what a merged device knew, and the strong
 * identifiers of the keys it keeps (a refused rebind does not put a foreign identifier in its record).
 */
export function nextIdentity(
  c: UpdateContext,
  baseIdentity: Identity,
  deviceRecord: CanonicalRecord | undefined,
  mergedRecord: CanonicalRecord | undefined,
  kept: readonly IdentityKey[],
): Identity {
  const { u } = c;
  const keptIdentity: Identity = {
    armisId: kept.some((k) => k.kind === "armis-id") ? u.armisId : "",
    netboxIds: u.netboxIds.filter((v) => kept.some((k) => k.kind === "netbox-id" && k.value === v)),
    macs: u.macs.filter((v) => kept.some((k) => k.kind === "mac" && k.value === v)),
    hostname: u.hostname,
  };
  const hostnameNewer = !deviceRecord || c.t >= deviceRecord.updatedAtMs;
  const mergedBase = mergedRecord ? unionIdentity(baseIdentity, identityOf(mergedRecord), false) : baseIdentity;
  return unionIdentity(mergedBase, keptIdentity, hostnameNewer);
}
