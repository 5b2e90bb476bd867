/**
 * Identity kinds, strongest first, and their wire numbers (wire-compatible with the reference's
 * `identitymap.v1.IdentityKind`).
 */
export const IDENTITY_KINDS = ["armis-id", "netbox-id", "mac", "partition-ip", "ip", "device-id"] as const;
export type IdentityKind = (typeof IDENTITY_KINDS)[number];

/** Proto enum numbers: UNSPECIFIED 0, DEVICE_ID 1, ARMIS_ID 2, NETBOX_ID 3, MAC 4, IP 5, PARTITION_IP 6. */
export const KIND_WIRE_NUMBER: Readonly<Record<IdentityKind, number>> = {
  "device-id": 1,
  "armis-id": 2,
  "netbox-id": 3,
  mac: 4,
  ip: 5,
  "partition-ip": 6,
};

/** Proto enum names, for JSON clients that send `IDENTITY_KIND_MAC` instead of `mac`. */
export const KIND_PROTO_NAME: Readonly<Record<IdentityKind, string>> = {
  "device-id": "IDENTITY_KIND_DEVICE_ID",
  "armis-id": "IDENTITY_KIND_ARMIS_ID",
  "netbox-id": "IDENTITY_KIND_NETBOX_ID",
  mac: "IDENTITY_KIND_MAC",
  ip: "IDENTITY_KIND_IP",
  "partition-ip": "IDENTITY_KIND_PARTITION_IP",
};

const BY_WIRE = new Map<number, IdentityKind>(IDENTITY_KINDS.map((k) => [KIND_WIRE_NUMBER[k], k] as const));
const BY_NAME = new Map<string, IdentityKind>([
  ...IDENTITY_KINDS.map((k) => [k, k] as const),
  ...IDENTITY_KINDS.map((k) => [KIND_PROTO_NAME[k], k] as const),
]);

/** Rank in precedence: 0 is strongest. */
export function kindRank(kind: IdentityKind): number {
  return IDENTITY_KINDS.indexOf(kind);
}

/** True when `a` is at least as strong as `b`. */
export function atLeastAsStrong(a: IdentityKind, b: IdentityKind): boolean {
  return kindRank(a) <= kindRank(b);
}

/** Strong kinds identify hardware or an inventory record; the rest are addresses and names. */
export const STRONG_KINDS = ["armis-id", "netbox-id", "mac"] as const satisfies readonly IdentityKind[];
export type StrongKind = (typeof STRONG_KINDS)[number];

export function isStrongKind(kind: IdentityKind): kind is StrongKind {
  return kind === "armis-id" || kind === "netbox-id" || kind === "mac";
}

/** Address kinds move with DHCP leases; their bindings age out. */
export function isAddressKind(kind: IdentityKind): boolean {
  return kind === "ip" || kind === "partition-ip";
}

export function kindFromWire(n: number): IdentityKind | undefined {
  return BY_WIRE.get(n);
}

/** Accepts `mac`, `IDENTITY_KIND_MAC`; anything else is undefined (unknown kind). */
export function parseKind(name: string): IdentityKind | undefined {
  return BY_NAME.get(name);
}
