/**
 * Key derivation and precedence, the same code the service runs (re-exported from src/domain), so a
 * sync job derives exactly the keys the map is indexed by.
 */
import { normalizeUpdate, type DeviceUpdate } from "../domain/device-update.js";
import type { IdentityKey } from "../domain/identity-key.js";
import { prioritizeKeys } from "../domain/identity-key.js";

export { normalizeUpdate, partitionIp, type DeviceUpdate, type NormalizedUpdate } from "../domain/device-update.js";
export { keyId, prioritizeKeys, sameKey, type IdentityKey } from "../domain/identity-key.js";
export {
  IDENTITY_KINDS,
  KIND_PROTO_NAME,
  KIND_WIRE_NUMBER,
  kindRank,
  parseKind,
  type IdentityKind,
} from "../domain/identity-kind.js";
export { DEFAULT_NAMESPACE, decodeSegment, encodeSegment, keyPath, parseKeyPath } from "../domain/key-path.js";
export { normalizeMac } from "../domain/mac.js";
export { normalizeIp } from "../domain/ip.js";
export type { RejectedIdentifier, RejectionReason } from "../domain/rejection.js";

/**
 * The identity keys of an update (the reference's `BuildKeys`): device-id, ip, partition-ip,
 * armis-id, netbox-id, mac, normalized; invalid identifiers are left out (normalizeUpdate lists them).
 */
export function buildKeys(update: DeviceUpdate, options: { deniedMacs?: ReadonlySet<string> } = {}): IdentityKey[] {
  return [...normalizeUpdate(update, { nowMs: 0, ...options }).keys];
}

/** The keys strongest first (the reference's `PrioritizeKeys`): the order a lookup should try them in. */
export function prioritizedKeys(update: DeviceUpdate): IdentityKey[] {
  return prioritizeKeys(buildKeys(update));
}
