import type { Binding, Revision } from "../../domain/binding.js";
import type { IdentityKv, KvChange, KvEntry, WatchHandle } from "../../ports/identity-kv.js";
import { CompactBindings, type BindingSummary } from "./compact-bindings.js";

export interface CacheLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface CacheOptions {
  /** How long a resync waits after losing the watch. */
  readonly retryMs?: number;
  /**
   * At most this many bindings (IDMAP_CACHE_MAX_BINDINGS): the hot part of a map larger than memory.
   * The cache then never answers absence (a key it does not hold is read from the store) and the
   * least recently used bindings make room. Undefined: a full mirror of the namespace.
   */
  readonly maxBindings?: number;
  /**
   * How long `start` waits for the first load before returning; the load goes on in the background
   * and a key not loaded yet is read from the store. Undefined: until loaded.
   */
  readonly readyWithinMs?: number;
}

/**
 * Milliseconds of decoding per turn of the event loop while loading: requests and the service's own
 * start-up run between slices. A fixed count per slice (20 000 at first) made start-up wait for the
 * load: each of its many awaits waited behind one slice, so a fresh instance with 1 000 000 bindings
 * answered its first lookup only moments before its cache was loaded.
 */
const LOAD_SLICE_MS = 8;

/**
 * Entries per page of the load's listing (the KV port's `scan`): large enough that a page's round
 * trip (a network store's) is a small part of decoding it, small enough that a page's bytes are
 * nothing beside the cache (about a few hundred KB) and a synchronous page read fits in a slice.
 */
const LOAD_PAGE = 1_000;

/**
 * A local copy of the bindings under the namespace, kept coherent by the KV watch stream, in compact
 * form (compact-bindings.ts). As a full mirror, once synced it answers absence too, so an unchanged
 * update costs no KV round trip. Bounded, it holds the most recently used bindings only, and a miss
 * is read from the store. Correctness never depends on it: every write is conditional on the
 * revision, and a stale entry only costs a conflict and a re-read.
 */
export class BindingCache {
  private readonly entries = new CompactBindings();
  /**
   * Writes of ours in flight, by path: a store whose watch delivers a change before the write call
   * returns (the memory KV does, synchronously) hands back our own bytes, which need no decoding.
   */
  private readonly inFlight = new Map<string, { bytes: Uint8Array; binding: Binding["record"] }>();
  /** Deletes we made ourselves that the watch has not delivered yet: older events must not resurrect the key. */
  private readonly pendingDeletes = new Map<string, Revision>();
  private synced = false;
  private cursor: Revision = 0;
  private handle: WatchHandle | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private resyncs = 0;
  /** Bumped by every sync: a load overtaken by a newer sync (or a stop) gives up. */
  private generation = 0;
  private readonly retryMs: number;
  readonly maxBindings: number | undefined;
  private readonly readyWithinMs: number | undefined;

  constructor(
    private readonly kv: IdentityKv,
    private readonly prefix: string,
    private readonly decode: (value: Uint8Array, revision: Revision) => Binding,
    private readonly log: CacheLogger,
    options: number | CacheOptions = {},
  ) {
    const o = typeof options === "number" ? { retryMs: options } : options;
    this.retryMs = o.retryMs ?? 1_000;
    this.maxBindings = o.maxBindings;
    this.readyWithinMs = o.readyWithinMs;
  }

  get isSynced(): boolean {
    return this.synced;
  }

  /** True when the cache holds every binding of the namespace once synced (not bounded). */
  get isMirror(): boolean {
    return this.maxBindings === undefined;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Loads the namespace and starts the watch; returns once synced, or after `readyWithinMs` with the
   * load going on. Failure leaves the cache unsynced and retrying.
   */
  async start(): Promise<void> {
    const loading = this.sync().catch((e: unknown) => this.scheduleResync(e));
    if (this.readyWithinMs === undefined) return loading;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([loading, new Promise<void>((r) => (timer = setTimeout(r, this.readyWithinMs)))]);
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.handle?.stop().catch(() => {});
  }

  /**
   * Synced: the binding, or null when the key is absent (a full mirror only). Undefined: ask the
   * store (not synced, or a bounded cache that does not hold the key).
   */
  get(key: string): Binding | null | undefined {
    if (!this.synced) return undefined;
    const b = this.entries.get(key);
    if (b !== undefined) {
      if (this.maxBindings !== undefined) this.entries.touch(key);
      return b;
    }
    return this.maxBindings === undefined ? null : undefined;
  }

  /** Whatever the cache holds, synced or not. */
  peek(key: string): Binding | undefined {
    const b = this.entries.get(key);
    if (b !== undefined && this.maxBindings !== undefined) this.entries.touch(key);
    return b;
  }

  /** The device the binding held at `key` names, synced or not (no binding is built). */
  deviceIdOf(key: string): string | undefined {
    return this.entries.deviceIdOf(key);
  }

  /** Every binding held, synced or not (built one by one: for tests and tools, not for hot paths). */
  all(): IterableIterator<[string, Binding]> {
    return this.entries.entries();
  }

  /** Every binding held, as the census counts it, without building bindings (the object is reused). */
  summaries(): IterableIterator<BindingSummary> {
    return this.entries.summaries();
  }

  /** A write of ours is about to be sent; `done` once it has returned (or failed). */
  writing(key: string, bytes: Uint8Array, record: Binding["record"]): void {
    this.inFlight.set(key, { bytes, binding: record });
  }

  done(key: string, bytes: Uint8Array): void {
    if (this.inFlight.get(key)?.bytes === bytes) this.inFlight.delete(key);
  }

  /** Records a write this instance made (or a value it read), so it reads its own writes at once. */
  note(key: string, binding: Binding | null, revision: Revision): void {
    const cur = this.entries.revisionOf(key);
    if (cur !== undefined && cur >= revision) return;
    if (binding) {
      this.entries.set(key, binding);
      this.pendingDeletes.delete(key);
      this.evict();
    } else {
      this.entries.delete(key);
      if (revision > this.cursor) this.pendingDeletes.set(key, revision);
    }
  }

  private async sync(): Promise<void> {
    this.synced = false;
    const generation = ++this.generation;
    await this.handle?.stop().catch(() => {});
    this.handle = undefined;
    const started = performance.now();
    // Page by page (the KV port's scan): the process never holds the listed namespace, only a page of
    // it beside what is decoded, and the embedded store's reads come between other work, not as one
    // synchronous read of the whole namespace. Every entry is at least as new as `revision`; writes
    // after it reach us through the watch, which starts from it (an older change it repeats loses to
    // the newer value held, see apply()).
    const scan = await this.kv.scan(this.prefix, LOAD_PAGE);
    if (generation !== this.generation) return;
    const { revision } = scan;
    this.entries.clear();
    let listed = 0;
    this.sliceEnd = performance.now() + LOAD_SLICE_MS;
    for await (const page of scan.pages) {
      // Leaving the loop ends the scan (its iterator's return releases what the adapter holds).
      if (generation !== this.generation) return;
      listed += page.length;
      if (!(await this.fill(page, generation))) break;
      if (generation !== this.generation) return;
    }
    if (generation !== this.generation) return;
    this.cursor = revision;
    this.handle = await this.kv.watch(
      this.prefix,
      revision,
      (c) => this.apply(c),
      (e) => this.scheduleResync(e),
    );
    if (generation !== this.generation) {
      await this.handle.stop().catch(() => {});
      return;
    }
    this.synced = true;
    this.log.info(
      {
        bindings: this.entries.size,
        listed,
        revision,
        resyncs: this.resyncs,
        ms: Math.round(performance.now() - started),
        ...(this.maxBindings !== undefined ? { max_bindings: this.maxBindings } : {}),
      },
      "binding cache synced",
    );
  }

  /** When the current load slice ends (see LOAD_SLICE_MS). */
  private sliceEnd = 0;

  /**
   * Decodes and stores one listed page, in slices of the event loop's time, so a fresh instance
   * answers lookups while it loads (a page read is synchronous on the embedded store: the slice is
   * checked before the next one is asked for too, as this runs again for it). A key noted meanwhile
   * (our own write, or a read) is newer than the listing and stays; a bounded cache keeps what fits.
   * False once a bounded cache is full (the rest of the listing is not needed).
   */
  private async fill(page: readonly KvEntry[], generation: number): Promise<boolean> {
    const limit = this.maxBindings ?? Number.POSITIVE_INFINITY;
    for (let i = 0; i < page.length; i++) {
      if ((i & 255) === 0 && performance.now() > this.sliceEnd) {
        await new Promise((r) => setImmediate(r));
        if (generation !== this.generation) return false;
        this.sliceEnd = performance.now() + LOAD_SLICE_MS;
      }
      if (this.entries.size >= limit) return false;
      const e = page[i]!;
      const cur = this.entries.revisionOf(e.key);
      if (cur !== undefined && cur >= e.revision) continue;
      const deleted = this.pendingDeletes.get(e.key);
      if (deleted !== undefined && deleted > e.revision) continue;
      this.entries.set(e.key, this.decode(e.value, e.revision));
    }
    return this.entries.size < limit;
  }

  private apply(c: KvChange): void {
    if (c.revision > this.cursor) this.cursor = c.revision;
    const pending = this.pendingDeletes.get(c.key);
    if (pending !== undefined) {
      if (c.revision < pending) return;
      this.pendingDeletes.delete(c.key);
    }
    const cur = this.entries.revisionOf(c.key);
    if (cur !== undefined && cur >= c.revision) return;
    // Bounded: the watch keeps what is held coherent; what is not held is read from the store when asked.
    if (cur === undefined && this.maxBindings !== undefined) return;
    if (c.value) {
      const own = this.inFlight.get(c.key);
      const record = own && sameBytes(own.bytes, c.value) ? own.binding : undefined;
      this.entries.set(c.key, record ? { record, revision: c.revision } : this.decode(c.value, c.revision));
      this.evict();
    } else this.entries.delete(c.key);
  }

  /** Bounded: drops the least recently used bindings beyond the limit. */
  private evict(): void {
    if (this.maxBindings === undefined) return;
    while (this.entries.size > this.maxBindings) {
      const oldest = this.entries.oldest();
      if (oldest === undefined) return;
      this.entries.delete(oldest);
    }
  }

  private scheduleResync(e: unknown): void {
    if (this.stopped) return;
    this.synced = false;
    this.resyncs++;
    this.log.warn(
      { err: e instanceof Error ? e.message : String(e) },
      "binding cache lost its watch; reads go to the KV until it resyncs",
    );
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.stopped) return;
      this.sync().catch((err) => this.scheduleResync(err));
    }, this.retryMs);
    this.retryTimer.unref?.();
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
