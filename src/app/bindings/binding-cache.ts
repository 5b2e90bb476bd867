import type { Binding, Revision } from "../../domain/binding.js";
import type { IdentityKv, KvChange, WatchHandle } from "../../ports/identity-kv.js";

export interface CacheLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/**
 * A local mirror of every binding under the namespace, kept coherent by the KV watch stream.
 * Once synced it answers absence too, so an unchanged update costs no KV round trip.
 * Correctness never depends on it: every write is conditional on the revision, and a stale entry
 * only costs a conflict and a re-read.
 */
export class BindingCache {
  private readonly entries = new Map<string, Binding>();
  /** Deletes we made ourselves that the watch has not delivered yet: older events must not resurrect the key. */
  private readonly pendingDeletes = new Map<string, Revision>();
  private synced = false;
  private cursor: Revision = 0;
  private handle: WatchHandle | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private resyncs = 0;

  constructor(
    private readonly kv: IdentityKv,
    private readonly prefix: string,
    private readonly decode: (value: Uint8Array, revision: Revision) => Binding,
    private readonly log: CacheLogger,
    private readonly retryMs = 1_000,
  ) {}

  get isSynced(): boolean {
    return this.synced;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Loads the namespace and starts the watch. Failure leaves the cache unsynced and retrying. */
  async start(): Promise<void> {
    try {
      await this.sync();
    } catch (e) {
      this.scheduleResync(e);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.handle?.stop().catch(() => {});
  }

  /** Synced: the binding or null. Not synced: undefined (ask the store). */
  get(key: string): Binding | null | undefined {
    if (!this.synced) return undefined;
    return this.entries.get(key) ?? null;
  }

  /** Whatever the cache holds, synced or not. */
  peek(key: string): Binding | undefined {
    return this.entries.get(key);
  }

  /** Every binding held, synced or not (the bindings gauges count them; no KV call). */
  all(): IterableIterator<[string, Binding]> {
    return this.entries.entries();
  }

  /** Records a write this instance made (or a value it read), so it reads its own writes at once. */
  note(key: string, binding: Binding | null, revision: Revision): void {
    const cur = this.entries.get(key);
    if (cur && cur.revision >= revision) return;
    if (binding) {
      this.entries.set(key, binding);
      this.pendingDeletes.delete(key);
    } else {
      this.entries.delete(key);
      if (revision > this.cursor) this.pendingDeletes.set(key, revision);
    }
  }

  private async sync(): Promise<void> {
    this.synced = false;
    await this.handle?.stop().catch(() => {});
    const { entries, revision } = await this.kv.list(this.prefix);
    this.entries.clear();
    for (const e of entries) this.entries.set(e.key, this.decode(e.value, e.revision));
    this.cursor = revision;
    this.handle = await this.kv.watch(
      this.prefix,
      revision,
      (c) => this.apply(c),
      (e) => this.scheduleResync(e),
    );
    this.synced = true;
    this.log.info({ bindings: this.entries.size, revision, resyncs: this.resyncs }, "binding cache synced");
  }

  private apply(c: KvChange): void {
    if (c.revision > this.cursor) this.cursor = c.revision;
    const pending = this.pendingDeletes.get(c.key);
    if (pending !== undefined) {
      if (c.revision < pending) return;
      this.pendingDeletes.delete(c.key);
    }
    const cur = this.entries.get(c.key);
    if (cur && cur.revision >= c.revision) return;
    if (c.value) this.entries.set(c.key, this.decode(c.value, c.revision));
    else this.entries.delete(c.key);
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
