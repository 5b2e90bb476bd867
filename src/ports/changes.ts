import type { Revision } from "../domain/binding.js";
import type { IdentityKey } from "../domain/identity-key.js";
import type { CanonicalRecord } from "../domain/record.js";

/*
 * The change stream's part of the driving port (issue 15): a snapshot of the map and a follow from
 * any revision the store still remembers. REST serves them as NDJSON and Server-Sent Events, gRPC as
 * GetSnapshot and WatchChanges; the client's IdentityCache is built on them.
 */

/** One binding change, in the store's revision order. */
export interface ChangeEvent {
  readonly revision: Revision;
  readonly key: IdentityKey;
  readonly operation: "put" | "delete";
  /** The binding's new record; null for a delete. */
  readonly record: CanonicalRecord | null;
}

/** One live binding in a snapshot, with its own revision (at least the snapshot's). */
export interface SnapshotEntry {
  readonly key: IdentityKey;
  readonly record: CanonicalRecord;
  readonly revision: Revision;
}

/**
 * Every live binding, a page at a time. Every entry is at least as new as `revision` (on etcd,
 * exactly at it); following from `revision` and applying a change only when it is newer than the
 * entry's own revision yields the map as it is.
 */
export interface SnapshotStream {
  readonly revision: Revision;
  readonly pages: AsyncIterable<readonly SnapshotEntry[]>;
}

/** Where a follow delivers. Calls never overlap and come in revision order. */
export interface ChangeSink {
  /**
   * Changes delivered together. Several changes may share a revision (an etcd lease expiring many
   * keys at once): a batch never splits a revision, so "resume after the last revision of a batch"
   * is exact.
   */
  changes(batch: readonly ChangeEvent[]): void;
  /**
   * Nothing to send lately. `head` is the newest revision this instance has seen; `current` says
   * the follower has every change through it (it is not catching up), so it may resume after `head`.
   */
  heartbeat(head: Revision, current: boolean): void;
  /** The follow cannot continue (the store forgot what this follower still needed); resume or re-snapshot. */
  end(error: Error): void;
}

export type FollowerTransport = "rest" | "grpc" | "webhook";

export interface Following {
  /** The last revision delivered (or the one the follow started after). */
  readonly cursor: Revision;
  close(): void;
}

export interface ChangeFeedUseCase {
  /** Every live binding of the namespace, streamed. */
  snapshot(): Promise<SnapshotStream>;
  /**
   * Delivers every change after `since`, then keeps following. Throws RevisionCompacted (naming
   * `field`) when the store no longer remembers the changes after `since`.
   */
  follow(since: Revision, sink: ChangeSink, transport: FollowerTransport, field?: string): Promise<Following>;
  /** The newest revision this instance has seen, for a follow that gives none. */
  head(): Promise<Revision>;
  /** How often an idle follow hears a heartbeat. */
  readonly heartbeatMs: number;
}
