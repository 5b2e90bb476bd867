import type { Binding, KeyWrite, Revision } from "../../domain/binding.js";
import { KvUnavailable, RevisionConflict, WriteOutcomeUnknown } from "../../domain/errors.js";
import { isAddressKind, type IdentityKind } from "../../domain/identity-kind.js";
import { keyId, type IdentityKey } from "../../domain/identity-key.js";
import { keyPath, kindPrefix, parseKeyPath } from "../../domain/key-path.js";
import type { CanonicalRecord } from "../../domain/record.js";
import { decide, type DecideInput, type Resolved } from "../../domain/resolution.js";
import { CorruptRecord, decodeRecord, encodeRecord } from "../../adapters/proto/record-codec.js";
import type { IdentityKv, KvEntry, KvOp } from "../../ports/index.js";
import type { Metrics } from "../../ports/metrics.js";
import type { Logger } from "../../ports/logger.js";
import { BindingCache, type CacheOptions } from "./binding-cache.js";

/** A record that could not be decoded: not live, but its revision lets a writer replace it. */
export const CORRUPT: CanonicalRecord = {
  canonicalDeviceId: "",
  partition: "",
  metadataHash: "",
  updatedAtMs: 0,
  attributes: {},
  source: "",
  authority: false,
  expiresAtMs: 1,
  operationId: "",
  keys: [],
};

export function decodeBinding(value: Uint8Array, revision: Revision): Binding {
  try {
    return { record: decodeRecord(value), revision };
  } catch (e) {
    if (e instanceof CorruptRecord) return { record: CORRUPT, revision };
    throw e;
  }
}

/**
 * The one way to build a cache-backed store: a watch-coherent cache of the namespace, synced before
 * the store answers unless `options.readyWithinMs` lets it answer while the cache loads. `make` lets
 * the backfill count its writes on a subclass.
 */
export async function startCachedStore<S extends BindingStore>(
  kv: IdentityKv,
  namespace: string,
  log: Logger,
  make: (cache: BindingCache) => S,
  options: CacheOptions = {},
): Promise<S> {
  const cache = new BindingCache(kv, `${namespace}/`, decodeBinding, log, options);
  await cache.start();
  return make(cache);
}

/**
 * Bindings of one namespace on one IdentityKv: keys become paths, records become bytes, the cache
 * answers what it can, and every KV call is measured. A write whose reply was lost is settled by
 * re-reading: a record carrying this write's operation id is our own write, never a conflict.
 * Callers go through these methods, never through `kv` or `cache` (tests may watch the cache).
 */
export class BindingStore {
  constructor(
    readonly kv: IdentityKv,
    readonly namespace: string,
    readonly cache: BindingCache | undefined,
    private readonly metrics: Metrics,
    /** How long a write whose reply was lost may wait for the store to answer the re-read that settles it. */
    private readonly settleBudgetMs = 5_000,
  ) {}

  /**
   * The key's path. Remembered per key object: one update's keys are asked for again and again
   * (grouping, decide's reads, the writes), and encoding costs about half a microsecond each time.
   */
  path(key: IdentityKey): string {
    let p = this.pathOf.get(key);
    if (p === undefined) {
      p = keyPath(this.namespace, key);
      // Built piece by piece: flatten it once (see compact-bindings.ts), not on every hash of it.
      p.charCodeAt(0);
      this.pathOf.set(key, p);
    }
    return p;
  }

  private readonly pathOf = new WeakMap<IdentityKey, string>();

  /** The device the cached binding of `key` names, if the cache holds one (no round trip, nothing built). */
  cachedDeviceId(key: IdentityKey): string | undefined {
    return this.cache?.deviceIdOf(this.path(key));
  }

  /** The same map in another namespace, without a cache (lookups that name their namespace). */
  inNamespace(namespace: string): BindingStore {
    return new BindingStore(this.kv, namespace, undefined, this.metrics, this.settleBudgetMs);
  }

  /** The cached binding at `path` without a round trip; undefined when the cache does not hold it. */
  peekPath(path: string): Binding | undefined {
    return this.cache?.peek(path);
  }

  /** Records in the cache what the store just answered for `path`. */
  notePath(path: string, b: Binding): void {
    this.cache?.note(path, b, b.revision);
  }

  /** Stops the cache's watch; the store still answers from the KV. */
  async stop(): Promise<void> {
    await this.cache?.stop();
  }

  /** The cached binding (synced cache: null means absent), or undefined when only the KV can tell. */
  cached(key: IdentityKey): Binding | null | undefined {
    return this.cache?.get(this.path(key));
  }

  /**
   * Loads bindings into `into` (by keyId): from the cache unless `fresh`, the rest in one batch read.
   * Returns the number of KV round trips it took (0 when the cache answered everything).
   */
  async load(keys: readonly IdentityKey[], into: Map<string, Binding | null>, fresh: boolean): Promise<number> {
    const misses: IdentityKey[] = [];
    for (const k of keys) {
      const c = fresh ? undefined : this.cached(k);
      if (c === undefined) misses.push(k);
      else into.set(keyId(k), c);
    }
    if (misses.length === 0) return 0;
    const got = await this.getMany(misses);
    misses.forEach((k, i) => {
      const b = got[i] ?? null;
      into.set(keyId(k), b);
      if (b) this.cache?.note(this.path(k), b, b.revision);
    });
    return 1;
  }

  /**
   * decide() until it has every binding it asked for, loading what it names into `view`: the one loop
   * publish and shadow mode share. A key already in `view` is read from it; otherwise, unless `fresh`
   * (a retry after a conflict, which must read the store), from the cache, which usually answers
   * synchronously, so decide() completes in one pass. Null only for an update decide() rejects (no
   * keys). `cost.reads` counts the KV round trips made.
   */
  async decideLoaded(
    input: DecideInput,
    view: Map<string, Binding | null>,
    fresh: boolean,
    cost: { reads: number } = { reads: 0 },
  ): Promise<Resolved | null> {
    const read = (k: IdentityKey) => {
      const id = keyId(k);
      const v = view.get(id);
      if (v !== undefined || fresh) return v;
      const c = this.cached(k);
      if (c !== undefined) view.set(id, c);
      return c;
    };
    // Keys read from the store in this loop because the decision dropped them from the index.
    let checked: Set<string> | undefined;
    for (let round = 0; ; round++) {
      const d = decide(input, read);
      if (d.status === "rejected") return null;
      if (round > 50) throw new Error(`resolution of ${input.update.deviceId} did not converge`);
      if (d.status === "needs") {
        cost.reads += await this.load(d.keys, view, fresh);
        continue;
      }
      // A key dropped as gone may be one another instance has just bound to this device, which the
      // cache has not seen yet; the record's CAS does not cover it (issue 12). Read it from the store.
      const unchecked = fresh || !d.dropped ? [] : d.dropped.filter((k) => !checked?.has(keyId(k)));
      if (unchecked.length === 0) return d;
      checked ??= new Set();
      for (const k of unchecked) checked.add(keyId(k));
      cost.reads += await this.load(unchecked, view, true);
    }
  }

  /** Bindings of `keys` from the store (not the cache), in order, in one batch read. */
  async getMany(keys: readonly IdentityKey[]): Promise<(Binding | null)[]> {
    const paths = keys.map((k) => this.path(k));
    const got = await this.measure("get_many", () => this.kv.getMany(paths), paths.length);
    return got.map((e) => (e ? decodeBinding(e.value, e.revision) : null));
  }

  async get(key: IdentityKey): Promise<Binding | null> {
    const path = this.path(key);
    const e = await this.measure("get", () => this.kv.get(path));
    return e ? decodeBinding(e.value, e.revision) : null;
  }

  /** Every binding of one kind, read from the store (not the cache): what all instances agree on. */
  async listKind(kind: IdentityKind): Promise<{ key: IdentityKey; binding: Binding }[]> {
    const { entries } = await this.measure("list", () => this.kv.list(kindPrefix(this.namespace, kind)));
    return entries.map((e) => ({ key: parseKeyPath(e.key).key, binding: decodeBinding(e.value, e.revision) }));
  }

  /** Applies one conditional write; returns the new revision (null for a delete). */
  async apply(w: KeyWrite, weakTtlMs: number): Promise<Revision | null> {
    const path = this.path(w.key);
    const ttl = isAddressKind(w.key.kind) ? { ttlMs: weakTtlMs } : undefined;
    try {
      if (w.op === "delete") {
        await this.measure("delete", () => this.kv.delete(path, w.revision));
        this.cache?.note(path, null, w.revision + 1);
        return null;
      }
      const bytes = encodeRecord(w.record);
      this.cache?.writing(path, bytes, w.record);
      try {
        const revision =
          w.op === "create"
            ? await this.measure("create", () => this.kv.create(path, bytes, ttl))
            : await this.measure("update", () => this.kv.update(path, bytes, w.revision, ttl));
        this.cache?.note(path, { record: w.record, revision }, revision);
        return revision;
      } finally {
        this.cache?.done(path, bytes);
      }
    } catch (e) {
      // The KV names the path; the caller needs the key, so it gets it here rather than parsing the path.
      if (e instanceof RevisionConflict && !e.identityKey)
        throw new RevisionConflict(path, e.cause === undefined ? undefined : { cause: e.cause }, w.key);
      if (!(e instanceof WriteOutcomeUnknown)) throw e;
      return this.settle(w, path, e);
    }
  }

  /** After a lost reply: our write is there (success), or it is not (a conflict to re-decide). */
  private async settle(w: KeyWrite, path: string, cause: WriteOutcomeUnknown): Promise<Revision | null> {
    const e = await this.reread(path, cause);
    if (w.op === "delete") {
      if (!e) return null;
      throw new RevisionConflict(path, { cause }, w.key);
    }
    if (e) {
      const b = decodeBinding(e.value, e.revision);
      if (b.record.operationId === w.record.operationId) {
        this.cache?.note(path, b, e.revision);
        return e.revision;
      }
    }
    throw new RevisionConflict(path, { cause }, w.key);
  }

  /**
   * The re-read that settles a lost reply. The reply is usually lost because the connection dropped,
   * and the client is reconnecting at that moment (it refuses calls until then), or because the
   * server stalled (the read times out too): retry with backoff while the store cannot answer, for
   * up to `settleBudgetMs`. Giving up leaves the outcome unknown, which is what the caller learns.
   */
  private async reread(path: string, cause: WriteOutcomeUnknown): Promise<KvEntry | null> {
    const deadline = performance.now() + this.settleBudgetMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.measure("get", () => this.kv.get(path));
      } catch (e) {
        if (!(e instanceof KvUnavailable)) throw e;
        const delay = Math.min(1_000, 50 * 2 ** attempt);
        if (performance.now() + delay > deadline) throw cause;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async measure<T>(op: KvOp, f: () => Promise<T>, keys = 1): Promise<T> {
    const start = performance.now();
    try {
      const r = await f();
      this.metrics.kvOperation(op, this.kv.backend, (performance.now() - start) / 1000, "ok", keys);
      return r;
    } catch (e) {
      // A conflict is the KV answering correctly; only failures count as errors (the KV-down alert).
      const result =
        e instanceof RevisionConflict ? "conflict" : e instanceof WriteOutcomeUnknown ? "unknown" : "error";
      this.metrics.kvOperation(op, this.kv.backend, (performance.now() - start) / 1000, result, keys);
      throw e;
    }
  }
}
