import { kindRank, type IdentityKind } from "./identity-kind.js";
import { sortSmall } from "./small-sort.js";

export interface IdentityKey {
  readonly kind: IdentityKind;
  readonly value: string;
}

export function sameKey(a: IdentityKey, b: IdentityKey): boolean {
  return a.kind === b.kind && a.value === b.value;
}

/** `<kind>|<value>`: a map key for an identity key, independent of namespace. */
export function keyId(k: IdentityKey): string {
  return `${k.kind}|${k.value}`;
}

/** Strongest first (armis, netbox, mac, partition-ip, ip, device-id); ties by value. Stable and pure. */
export function prioritizeKeys(keys: readonly IdentityKey[]): IdentityKey[] {
  return sortSmall(
    [...keys],
    (a, b) => kindRank(a.kind) - kindRank(b.kind) || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0),
  );
}
