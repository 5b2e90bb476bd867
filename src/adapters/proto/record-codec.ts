import { kindFromWire, type IdentityKind } from "../../domain/identity-kind.js";
import type { CanonicalRecord, IndexedKey } from "../../domain/record.js";
import { identityMapRoot } from "./proto-root.js";
import { writeRecord } from "./record-writer.js";

/**
 * CanonicalRecord <-> protobuf bytes (`identitymap.v1.CanonicalRecord`). Attributes are written
 * sorted by key so equal records are equal bytes; on read, keys are trimmed, empty ones skipped and
 * the last duplicate wins (the reference's rules). There is no JSON fallback.
 */
const Type = identityMapRoot().lookupType("identitymap.v1.CanonicalRecord");

export class CorruptRecord extends Error {
  readonly code = "corrupt_record" as const;
}

interface WireRecord {
  canonicalDeviceId?: string;
  partition?: string;
  metadataHash?: string;
  updatedAtUnixMillis?: number | { toNumber(): number };
  attributes?: { key?: string; value?: string }[];
  assertedBy?: number;
  source?: string;
  authority?: boolean;
  expiresAtUnixMillis?: number | { toNumber(): number };
  operationId?: string;
  keys?: { kind?: number; value?: string; sources?: string[] }[];
  provisionalSinceUnixMillis?: number | { toNumber(): number };
  sharedRebindsUnixMillis?: (number | { toNumber(): number })[];
  quarantinedSinceUnixMillis?: number | { toNumber(): number };
  contenders?: string[];
  pinnedAtUnixMillis?: number | { toNumber(): number };
  pinnedBy?: string;
}

/**
 * The record's bytes: the hand-written writer (record-writer.ts), the same bytes protobufjs's encoder
 * writes for the wire-shaped message (checked against it field by field in
 * test/proto/record-writer.test.ts) at a fraction of the CPU and garbage.
 */
export function encodeRecord(r: CanonicalRecord): Uint8Array {
  return writeRecord(r);
}

export function decodeRecord(bytes: Uint8Array): CanonicalRecord {
  if (bytes.length === 0) throw new CorruptRecord("empty payload");
  let m: WireRecord;
  try {
    m = Type.decode(bytes) as unknown as WireRecord;
  } catch (e) {
    throw new CorruptRecord("failed to decode canonical record", { cause: e });
  }
  if (!m.canonicalDeviceId) throw new CorruptRecord("record has no canonical_device_id");
  const attributes: Record<string, string> = {};
  for (const a of m.attributes ?? []) {
    const key = (a.key ?? "").trim();
    if (key !== "") attributes[key] = a.value ?? "";
  }
  const keys: IndexedKey[] = [];
  for (const k of m.keys ?? []) {
    const kind = kindFromWire(k.kind ?? 0);
    if (kind) keys.push({ kind, value: k.value ?? "", sources: k.sources ?? [] });
  }
  const assertedBy: IdentityKind | undefined = kindFromWire(m.assertedBy ?? 0);
  const provisionalSinceMs = toNumber(m.provisionalSinceUnixMillis);
  const quarantinedSinceMs = toNumber(m.quarantinedSinceUnixMillis);
  const pinnedAtMs = toNumber(m.pinnedAtUnixMillis);
  return {
    canonicalDeviceId: m.canonicalDeviceId,
    partition: m.partition ?? "",
    metadataHash: m.metadataHash ?? "",
    updatedAtMs: toNumber(m.updatedAtUnixMillis),
    attributes,
    ...(assertedBy ? { assertedBy } : {}),
    source: m.source ?? "",
    authority: m.authority ?? false,
    expiresAtMs: toNumber(m.expiresAtUnixMillis),
    operationId: m.operationId ?? "",
    keys,
    ...(provisionalSinceMs > 0 ? { provisionalSinceMs } : {}),
    ...(m.sharedRebindsUnixMillis?.length ? { sharedRebindsMs: m.sharedRebindsUnixMillis.map(toNumber) } : {}),
    ...(quarantinedSinceMs > 0 ? { quarantinedSinceMs } : {}),
    ...(m.contenders?.length ? { contenders: m.contenders } : {}),
    ...(pinnedAtMs > 0 ? { pin: { atMs: pinnedAtMs, actor: m.pinnedBy ?? "" } } : {}),
  };
}

function toNumber(v: number | { toNumber(): number } | undefined): number {
  if (v === undefined || v === null) return 0;
  return typeof v === "number" ? v : v.toNumber();
}
