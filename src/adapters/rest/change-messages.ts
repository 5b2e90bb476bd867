import type { CanonicalRecord } from "../../domain/record.js";
import {
  candidatesOf,
  contestedUntil,
  DEFAULT_SHARED_IDENTIFIER_POLICY,
  isQuarantined,
  type SharedIdentifierPolicy,
} from "../../domain/shared-identifier.js";
import type { ChangeEvent, SnapshotEntry } from "../../ports/changes.js";
import { keyJson, recordJson } from "./rest-messages.js";

/*
 * The change stream's JSON (snapshot lines and change events), shared by /v1/snapshot, /v1/changes
 * and the shapes in change-schemas.ts. A follower answers lookups from these records itself, so they
 * carry what a lookup needs beyond the identity: when a weak key expires, and whether a MAC is
 * quarantined, or contested until when (and between which devices).
 */

export function streamRecordJson(
  r: CanonicalRecord,
  shared: SharedIdentifierPolicy = DEFAULT_SHARED_IDENTIFIER_POLICY,
) {
  const until = contestedUntil(r, shared);
  return {
    ...recordJson(r),
    expires_at_unix_millis: r.expiresAtMs,
    ...(isQuarantined(r)
      ? { quarantined_since_unix_millis: r.quarantinedSinceMs ?? 0, candidates: [...candidatesOf(r)] }
      : until !== undefined
        ? { contested_until_unix_millis: until, candidates: [...candidatesOf(r)] }
        : {}),
  };
}

export function changeJson(e: ChangeEvent, shared?: SharedIdentifierPolicy) {
  return {
    revision: e.revision,
    operation: e.operation,
    key: keyJson(e.key),
    canonical_device_id: e.record?.canonicalDeviceId ?? null,
    ...(e.record ? { record: streamRecordJson(e.record, shared) } : {}),
  };
}

export function snapshotLineJson(e: SnapshotEntry, shared?: SharedIdentifierPolicy) {
  return {
    revision: e.revision,
    key: keyJson(e.key),
    canonical_device_id: e.record.canonicalDeviceId,
    record: streamRecordJson(e.record, shared),
  };
}

/** The last line of a snapshot: its revision and how many bindings came before it. */
export function snapshotEndJson(revision: number, count: number) {
  return { end: true as const, revision, count };
}
