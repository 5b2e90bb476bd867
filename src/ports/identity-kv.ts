import type { Revision } from "../domain/binding.js";

export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  readonly revision: Revision;
}

/** One change seen by a watch: `value` is null for a delete. */
export interface KvChange {
  readonly key: string;
  readonly value: Uint8Array | null;
  readonly revision: Revision;
}

export interface WriteOptions {
  /** A hint for backends with per-key expiry (etcd leases, Redis PEXPIRE); records carry their own expiry too. */
  readonly ttlMs?: number;
}

/** A listing read page by page: `revision` was read first, so every page is at least that new. */
export interface KvScan {
  readonly revision: Revision;
  readonly pages: AsyncIterable<readonly KvEntry[]>;
}

/** Whether a watch can resume after a revision with no gap, and the store's newest revision. */
export interface ResumePoint {
  readonly head: Revision;
  /** False: changes after the revision were compacted away, or the store never reached it (it lost changes). */
  readonly resumable: boolean;
  /** Why not, for the error a follower gets. */
  readonly reason?: string;
}

export interface WatchHandle {
  stop(): Promise<void>;
}

/**
 * The KV map's port. CAS first: every write names the revision it expects and fails with one typed
 * error, `RevisionConflict`, when the store holds another. Revisions are per store and increase with
 * every write, so a watch can resume from one. Backend markers (NATS delete markers, Redis revision
 * fields) never leave an adapter. Unreachable backends throw `KvUnavailable`; a write whose reply was
 * lost throws `WriteOutcomeUnknown` (the caller resolves it by re-reading).
 */
export interface IdentityKv {
  /** Backend name for logs and metrics labels. */
  readonly backend: string;
  /** The entry, or null when absent. */
  get(key: string): Promise<KvEntry | null>;
  /** Entries in request order; null where absent. Adapters batch or parallelise; never one round trip after another. */
  getMany(keys: readonly string[]): Promise<(KvEntry | null)[]>;
  /** Creates the key only if absent; returns its revision. */
  create(key: string, value: Uint8Array, options?: WriteOptions): Promise<Revision>;
  /** Replaces the value only if the key is at `revision`; returns the new revision. */
  update(key: string, value: Uint8Array, revision: Revision, options?: WriteOptions): Promise<Revision>;
  /** Deletes the key only if it is at `revision`. */
  delete(key: string, revision: Revision): Promise<void>;
  /** Every entry under `prefix`, and the store revision the listing is consistent with. */
  list(prefix: string): Promise<{ entries: KvEntry[]; revision: Revision }>;
  /**
   * Delivers every change under `prefix` with a revision above `afterRevision`, in revision order.
   * Resolves once the watch is established. `onError` reports a watch that cannot continue (for
   * example a compacted revision); the watcher then re-lists.
   */
  watch(
    prefix: string,
    afterRevision: Revision,
    onChange: (change: KvChange) => void,
    onError: (error: Error) => void,
  ): Promise<WatchHandle>;
  /**
   * Like `list`, one page at a time, so a caller can stream the whole map without holding it: each
   * page is read when the caller asks for it (etcd: pinned to `revision`; JetStream: pushed by the
   * server ahead of the reader), at most `pageSize` entries (a hint on Redis, whose SCAN takes it as
   * one), in key order where the store keeps keys ordered (not Redis, not JetStream). `revision` is
   * read before the first page: every entry is at least that new, and a watch after it misses
   * nothing. A page size that is not a positive integer is refused (RangeError).
   */
  scan(prefix: string, pageSize: number): Promise<KvScan>;
  /**
   * Can a watch started after `afterRevision` deliver every later change? Not when the store's
   * history no longer reaches back that far (compaction, a trimmed change log), nor when the store
   * is behind `afterRevision` (it was reset and hands revisions out again).
   */
  resumePoint(afterRevision: Revision): Promise<ResumePoint>;
  /** Cheap reachability check for readiness probes. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
