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
  /** Cheap reachability check for readiness probes. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
