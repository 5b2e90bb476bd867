import type { AuditEntry } from "../../ports/device-store.js";
import type { DeviceUpdate } from "../../domain/device-update.js";
import { KIND_WIRE_NUMBER, kindFromWire, type IdentityKind } from "../../domain/identity-kind.js";
import type { IdentityKey } from "../../domain/identity-key.js";
import type { CanonicalRecord } from "../../domain/record.js";
import type { LookupRequest, LookupResult, PublishResult, ResolveResult } from "../../ports/identity-service.js";

/**
 * Wire shapes as @grpc/proto-loader hands them over (keepCase, enums and 64-bit integers as numbers,
 * defaults filled in) and the mapping to and from the domain services' types. No decisions here.
 */
export interface WireKey {
  readonly kind: number;
  readonly value: string;
}

export interface WireLookup {
  readonly identity_keys: readonly WireKey[];
  readonly namespace: string;
  readonly ip_hint: string;
}

export interface WireUpdate {
  readonly device_id: string;
  readonly ip: string;
  readonly partition: string;
  readonly mac: string;
  readonly hostname: string;
  readonly source: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly observed?: "timestamp_unix_millis" | "timestamp";
  readonly timestamp_unix_millis?: number;
  readonly timestamp?: string;
}

const OUTCOME: Readonly<Record<PublishResult["outcome"], number>> = {
  created: 1,
  updated: 2,
  unchanged: 3,
  rejected: 4,
  failed: 5,
};

/** A kind the service does not know stays a name the lookup rejects, with the field named. */
const kindName = (n: number): string => kindFromWire(n) ?? (n === 0 ? "IDENTITY_KIND_UNSPECIFIED" : String(n));

export function lookupRequest(m: WireLookup, batchNamespace = ""): LookupRequest {
  const namespace = m.namespace.trim() || batchNamespace.trim();
  return {
    identityKeys: m.identity_keys.map((k) => ({ kind: kindName(k.kind), value: k.value })),
    ...(m.ip_hint.trim() !== "" ? { ipHint: m.ip_hint } : {}),
    ...(namespace !== "" ? { namespace } : {}),
  };
}

/**
 * core.CoreService keeps the reference's tolerance: keys with kind UNSPECIFIED or a blank value are
 * dropped (design: reference §4.1 step 3). Null when keys were given but none is usable: a miss.
 */
export function referenceLookupRequest(m: WireLookup): LookupRequest | null {
  const usable = m.identity_keys.filter((k) => k.kind !== 0 && k.value.trim() !== "");
  if (usable.length === 0 && m.identity_keys.length > 0 && m.ip_hint.trim() === "") return null;
  return lookupRequest({ ...m, identity_keys: usable });
}

export function wireKey(k: IdentityKey): WireKey {
  return { kind: KIND_WIRE_NUMBER[k.kind], value: k.value };
}

/** The identity part of the record (fields 1-5), as the REST API shows it. */
export function wireRecord(r: CanonicalRecord) {
  return {
    canonical_device_id: r.canonicalDeviceId,
    partition: r.partition,
    metadata_hash: r.metadataHash,
    updated_at_unix_millis: r.updatedAtMs,
    attributes: Object.keys(r.attributes)
      .sort()
      .map((key) => ({ key, value: r.attributes[key]! })),
    provisional_since_unix_millis: r.provisionalSinceMs ?? 0,
  };
}

export function lookupReply(r: LookupResult) {
  return {
    found: r.found,
    record: r.record ? wireRecord(r.record) : null,
    matched_key: r.matchedKey ? wireKey(r.matchedKey) : null,
    revision: r.revision,
    hydrated: r.hydrated,
    resolved_via: r.resolvedVia,
    ambiguous: r.ambiguous ? { key: wireKey(r.ambiguous.key), candidates: [...r.ambiguous.candidates] } : null,
  };
}

export function deviceUpdate(m: WireUpdate): DeviceUpdate {
  const timestamp =
    m.observed === "timestamp_unix_millis"
      ? m.timestamp_unix_millis
      : m.observed === "timestamp"
        ? m.timestamp
        : undefined;
  return {
    device_id: m.device_id,
    ip: m.ip,
    partition: m.partition,
    mac: m.mac,
    hostname: m.hostname,
    source: m.source,
    metadata: { ...m.metadata },
    ...(timestamp !== undefined ? { timestamp } : {}),
  };
}

const kindNumber = (k: IdentityKind | null): number => (k ? KIND_WIRE_NUMBER[k] : 0);

export function publishReply(r: PublishResult) {
  return {
    device_id: r.device_id,
    canonical_device_id: r.canonical_device_id ?? "",
    matched_by: kindNumber(r.matched_by),
    outcome: OUTCOME[r.outcome],
    tombstone: r.tombstone ?? null,
    merged_device_ids: r.merged_device_ids ?? [],
    rejected_identifiers: r.rejected_identifiers ?? [],
    error: r.error ? { code: r.error.code, message: r.error.message, keys: r.error.keys ?? [] } : null,
  };
}

export function resolveReply(r: ResolveResult) {
  return {
    device_id: r.device_id,
    canonical_device_id: r.canonical_device_id ?? "",
    canonical_partition: r.canonical_partition ?? "",
    canonical_metadata_hash: r.canonical_metadata_hash ?? "",
    canonical_revision: r.canonical_revision ?? 0,
    matched_by: kindNumber(r.matched_by),
    rejected_identifiers: r.rejected_identifiers ?? [],
    trace: r.trace
      ? {
          ...r.trace,
          candidates: r.trace.candidates.map((c) => ({ ...c, key: wireKey(c.key), differing: c.differing ?? [] })),
          own_id: r.trace.own_id ?? "",
          quarantined_ignored: (r.trace.quarantined_ignored ?? []).map(wireKey),
          quarantined: (r.trace.quarantined ?? []).map(wireKey),
          contested: (r.trace.contested ?? []).map(wireKey),
        }
      : null,
  };
}

export function auditReply(e: AuditEntry & { readonly id: number }) {
  return {
    id: e.id,
    at_unix_millis: e.atMs,
    actor: e.actor,
    key: wireKey(e.key),
    from_device_id: e.fromDeviceId ?? "",
    to_device_id: e.toDeviceId ?? "",
    revision: e.revision ?? 0,
    reason: e.reason,
  };
}
