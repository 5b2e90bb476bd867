import type { IdentityKind } from "./identity-kind.js";
import { hashMetadata } from "./metadata-hash.js";
import { sortSmall } from "./small-sort.js";

/** A key in a device's reverse index, with the sources that reported it (address keys only). */
export interface IndexedKey {
  readonly kind: IdentityKind;
  readonly value: string;
  readonly sources: readonly string[];
}

/**
 * What one binding holds: `identitymap.v1.CanonicalRecord`. Fields 1-5 are the reference's; the rest
 * are ours (new numbers, none reused). The identity part (id, partition, attributes, hash) is the
 * same under every key of a device so one read answers a lookup and the veto needs no extra read;
 * the per-binding part says who asserted the binding and when.
 */
export interface CanonicalRecord {
  readonly canonicalDeviceId: string;
  readonly partition: string;
  readonly metadataHash: string;
  readonly updatedAtMs: number;
  /** Stable facts about the device: strong identifiers and hostname; never per-sighting detail. */
  readonly attributes: Readonly<Record<string, string>>;
  /** Strength of the assertion that made this binding; a weaker one cannot rebind it. */
  readonly assertedBy?: IdentityKind;
  readonly source: string;
  /** Asserted by an address authority (NetBox by default): links while stale. */
  readonly authority: boolean;
  /** 0: never expires. Weak keys age out. */
  readonly expiresAtMs: number;
  /** The write that produced this value; lets a writer recognise its own write after a lost reply. */
  readonly operationId: string;
  /** Reverse index: every key bound to the device. Only on the device's own device-id binding. */
  readonly keys: readonly IndexedKey[];
  /**
   * Set while the device only ever carried addresses (sweeps, pings, address-derived names): when it
   * was first seen. Part of the identity, so every binding of the device says so.
   */
  readonly provisionalSinceMs?: number;
  /** MAC bindings: when evidently different devices took the MAC from each other, within the window. */
  readonly sharedRebindsMs?: readonly number[];
  /** MAC bindings: set once the MAC is quarantined as shared (it links and merges nothing). */
  readonly quarantinedSinceMs?: number;
  /** A quarantined MAC: every device that held it (the ambiguity answer's candidates). */
  readonly contenders?: readonly string[];
  /**
   * Set when an operator decided this binding (a manual merge, split or pin, ADR 0016): no sighting
   * moves it until the pin is lifted. Per binding, like the assertion that made it.
   */
  readonly pin?: Pin;
}

/** An operator's manual decision on one binding: who and when. */
export interface Pin {
  readonly atMs: number;
  readonly actor: string;
}

/** The strong identity of a device, read from record attributes. */
export interface Identity {
  readonly armisId: string;
  readonly netboxIds: readonly string[];
  readonly macs: readonly string[];
  readonly hostname: string;
}

export const ATTR = {
  armis: "armis_device_id",
  netbox: "netbox_device_id",
  mac: "mac",
  hostname: "hostname",
} as const;

export const EMPTY_IDENTITY: Identity = { armisId: "", netboxIds: [], macs: [], hostname: "" };

export function identityOf(r: CanonicalRecord): Identity {
  const a = r.attributes;
  return {
    armisId: a[ATTR.armis] ?? "",
    netboxIds: splitSet(a[ATTR.netbox]),
    macs: splitSet(a[ATTR.mac]),
    hostname: a[ATTR.hostname] ?? "",
  };
}

export function attributesOf(id: Identity): Record<string, string> {
  const out: Record<string, string> = {};
  if (id.armisId) out[ATTR.armis] = id.armisId;
  if (id.netboxIds.length) out[ATTR.netbox] = sortSmall([...id.netboxIds]).join(",");
  if (id.macs.length) out[ATTR.mac] = sortSmall([...id.macs]).join(",");
  if (id.hostname) out[ATTR.hostname] = id.hostname;
  return out;
}

export function hasStrongIdentity(id: Identity): boolean {
  return id.armisId !== "" || id.netboxIds.length > 0 || id.macs.length > 0;
}

/**
 * The identity hash: canonical id, partition and identity attributes. Which source
 * reported, when, or from which address is not part of it, so alternating sources cost no writes.
 */
export function identityHash(
  canonicalDeviceId: string,
  partition: string,
  attributes: Readonly<Record<string, string>>,
  provisionalSinceMs = 0,
): string {
  // Only a provisional device hashes the flag, so records written before it existed keep their hash.
  const fields: Record<string, string> = { ...attributes, canonical_device_id: canonicalDeviceId, partition };
  if (provisionalSinceMs > 0) fields.provisional_since = String(provisionalSinceMs);
  return hashMetadata(fields);
}

function splitSet(v: string | undefined): string[] {
  return v ? v.split(",") : [];
}

/** True when the two identities name different devices in some strong kind both know. */
export function conflictingKinds(a: Identity, b: Identity): ("armis-id" | "netbox-id" | "mac")[] {
  const out: ("armis-id" | "netbox-id" | "mac")[] = [];
  if (a.armisId && b.armisId && a.armisId !== b.armisId) out.push("armis-id");
  if (disjoint(a.netboxIds, b.netboxIds)) out.push("netbox-id");
  if (disjoint(a.macs, b.macs)) out.push("mac");
  return out;
}

/** True when the identities have a strong identifier in common. */
export function sharesStrongIdentifier(a: Identity, b: Identity): boolean {
  return (
    (a.armisId !== "" && a.armisId === b.armisId) ||
    a.netboxIds.some((x) => b.netboxIds.includes(x)) ||
    a.macs.some((x) => b.macs.includes(x))
  );
}

function disjoint(a: readonly string[], b: readonly string[]): boolean {
  return a.length > 0 && b.length > 0 && !a.some((x) => b.includes(x));
}

export function unionIdentity(a: Identity, b: Identity, hostnameFromB: boolean): Identity {
  return {
    armisId: a.armisId || b.armisId,
    netboxIds: union(a.netboxIds, b.netboxIds),
    macs: union(a.macs, b.macs),
    hostname: hostnameFromB && b.hostname ? b.hostname : a.hostname || b.hostname,
  };
}

function union(a: readonly string[], b: readonly string[]): string[] {
  const out = [...a];
  for (const x of b) if (!out.includes(x)) out.push(x);
  return sortSmall(out);
}
