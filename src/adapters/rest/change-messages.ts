import type { CanonicalRecord } from "../../domain/record.js";
import { candidatesOf, isQuarantined } from "../../domain/shared-identifier.js";
import type { ChangeEvent, SnapshotEntry } from "../../ports/changes.js";
import { keyJson, recordJson } from "./rest-messages.js";

/*
 * The change stream's JSON (snapshot lines and change events), shared by /v1/snapshot, /v1/changes
 * and the shapes in change-schemas.ts. A follower answers lookups from these records itself, so they
 * carry what a lookup needs beyond the identity: when a weak key expires, and whether a MAC is
 * quarantined (and between which devices).
 */

export function streamRecordJson(r: CanonicalRecord) {
  return {
    ...recordJson(r),
    expires_at_unix_millis: r.expiresAtMs,
    ...(isQuarantined(r)
      ? { quarantined_since_unix_millis: r.quarantinedSinceMs ?? 0, candidates: [...candidatesOf(r)] }
      : {}),
  };
}

export function changeJson(e: ChangeEvent) {
  return {
    revision: e.revision,
    operation: e.operation,
    key: keyJson(e.key),
    canonical_device_id: e.record?.canonicalDeviceId ?? null,
    ...(e.record ? { record: streamRecordJson(e.record) } : {}),
  };
}

export function snapshotLineJson(e: SnapshotEntry) {
  return {
    revision: e.revision,
    key: keyJson(e.key),
    canonical_device_id: e.record.canonicalDeviceId,
    record: streamRecordJson(e.record),
  };
}

/** The last line of a snapshot: its revision and how many bindings came before it. */
export function snapshotEndJson(revision: number, count: number) {
  return { end: true as const, revision, count };
}
