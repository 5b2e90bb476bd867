import type { IdentityKind } from "../domain/identity-kind.js";

/*
 * The change stream's JSON as GET /v1/snapshot and GET /v1/changes send it (the StreamRecord,
 * SnapshotLine, SnapshotEnd, ChangeEvent and Heartbeat schemas of /openapi.json).
 */

export interface StreamRecord {
  readonly canonical_device_id: string;
  readonly partition: string;
  readonly metadata_hash: string;
  readonly updated_at_unix_millis: number;
  readonly attributes: Readonly<Record<string, string>>;
  readonly provisional: boolean;
  /** 0: never. A weak key past it reads as absent. */
  readonly expires_at_unix_millis: number;
  /** Set on a MAC quarantined as shared: a lookup by it is ambiguous. */
  readonly quarantined_since_unix_millis?: number;
  /** Set on a MAC evidently different devices took from each other: ambiguous until then. */
  readonly contested_until_unix_millis?: number;
  readonly candidates?: readonly string[];
}

export interface StreamKey {
  readonly kind: IdentityKind;
  readonly value: string;
}

export interface SnapshotLine {
  readonly revision: number;
  readonly key: StreamKey;
  readonly canonical_device_id: string;
  readonly record: StreamRecord;
}

export interface SnapshotEnd {
  readonly end: true;
  readonly revision: number;
  readonly count: number;
}

export interface ChangeEvent {
  readonly revision: number;
  readonly operation: "put" | "delete";
  readonly key: StreamKey;
  readonly canonical_device_id: string | null;
  readonly record?: StreamRecord;
}

export interface Heartbeat {
  readonly revision: number;
  readonly current: boolean;
}
