import type { Revision } from "../../domain/binding.js";
import { RevisionConflict } from "../../domain/errors.js";
import type { IdentityKv, KvChange, KvEntry, KvScan, ResumePoint, WatchHandle } from "../../ports/identity-kv.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A token bucket in its GCRA form: on average `perSecond` tokens, bursts of at most `burst`. Waits are
 * scheduled against absolute times, so timer jitter does not add up over a long run.
 */
export class TokenBucket {
  private tat = 0;
  private readonly interval: number;
  private readonly burst: number;

  constructor(
    readonly perSecond: number,
    burst?: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(perSecond > 0)) throw new RangeError(`rate must be positive, got ${perSecond}`);
    this.interval = 1000 / perSecond;
    // A twentieth of a second's worth: enough to absorb timer granularity, too little to skew a run.
    this.burst = burst ?? Math.max(1, Math.ceil(perSecond / 20));
  }

  async take(n: number): Promise<void> {
    if (n <= 0) return;
    const now = this.now();
    this.tat = Math.max(this.tat, now) + n * this.interval;
    const allowAt = this.tat - this.burst * this.interval;
    if (allowAt > now) await sleep(allowAt - now);
  }
}

/**
 * The backfill's KV with a cap on operations per second: every key read or written takes one token
 * (a batch read of n keys takes n), so the cap is what the backend sees whatever the batching.
 */
export class RateLimitedKv implements IdentityKv {
  readonly backend: string;

  constructor(
    private readonly inner: IdentityKv,
    private readonly bucket: TokenBucket,
  ) {
    this.backend = inner.backend;
  }

  async get(key: string): Promise<KvEntry | null> {
    await this.bucket.take(1);
    return this.inner.get(key);
  }
  async getMany(keys: readonly string[]): Promise<(KvEntry | null)[]> {
    await this.bucket.take(keys.length);
    return this.inner.getMany(keys);
  }
  async create(key: string, value: Uint8Array, options?: { ttlMs?: number }): Promise<Revision> {
    await this.bucket.take(1);
    return this.inner.create(key, value, options);
  }
  async update(key: string, value: Uint8Array, revision: Revision, options?: { ttlMs?: number }): Promise<Revision> {
    await this.bucket.take(1);
    return this.inner.update(key, value, revision, options);
  }
  async delete(key: string, revision: Revision): Promise<void> {
    await this.bucket.take(1);
    return this.inner.delete(key, revision);
  }
  async list(prefix: string): Promise<{ entries: KvEntry[]; revision: Revision }> {
    await this.bucket.take(1);
    return this.inner.list(prefix);
  }
  watch(
    prefix: string,
    after: Revision,
    onChange: (c: KvChange) => void,
    onError: (e: Error) => void,
  ): Promise<WatchHandle> {
    return this.inner.watch(prefix, after, onChange, onError);
  }
  scan(prefix: string, pageSize: number): Promise<KvScan> {
    return this.inner.scan(prefix, pageSize);
  }
  resumePoint(after: Revision): Promise<ResumePoint> {
    return this.inner.resumePoint(after);
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  /** The wrapped KV belongs to the app, which closes it. */
  async close(): Promise<void> {}
}

/**
 * A dry run's KV: reads see the real map, writes stay in this process. The publish protocol runs
 * unchanged on it, so a dry run counts exactly what a real run would write, and writes nothing.
 * Its own revisions start far above any backend's, so they never equal one and always read as newer
 * (the binding cache keeps the newest revision it has seen).
 */
export class ScratchKv implements IdentityKv {
  readonly backend: string;
  private readonly local = new Map<string, KvEntry | null>();
  private revision = 2 ** 52;

  constructor(private readonly inner: IdentityKv) {
    this.backend = inner.backend;
  }

  async get(key: string): Promise<KvEntry | null> {
    return this.local.has(key) ? this.local.get(key)! : this.inner.get(key);
  }
  async getMany(keys: readonly string[]): Promise<(KvEntry | null)[]> {
    const remote = keys.filter((k) => !this.local.has(k));
    const got = remote.length > 0 ? await this.inner.getMany(remote) : [];
    const byKey = new Map(remote.map((k, i) => [k, got[i] ?? null]));
    return keys.map((k) => (this.local.has(k) ? this.local.get(k)! : (byKey.get(k) ?? null)));
  }
  async create(key: string, value: Uint8Array): Promise<Revision> {
    if (await this.get(key)) throw new RevisionConflict(key);
    return this.put(key, value);
  }
  async update(key: string, value: Uint8Array, revision: Revision): Promise<Revision> {
    if ((await this.get(key))?.revision !== revision) throw new RevisionConflict(key);
    return this.put(key, value);
  }
  async delete(key: string, revision: Revision): Promise<void> {
    if ((await this.get(key))?.revision !== revision) throw new RevisionConflict(key);
    this.local.set(key, null);
  }
  async list(prefix: string): Promise<{ entries: KvEntry[]; revision: Revision }> {
    const { entries, revision } = await this.inner.list(prefix);
    const out = entries.filter((e) => !this.local.has(e.key));
    for (const [k, e] of this.local) if (e && k.startsWith(prefix)) out.push(e);
    return { entries: out, revision };
  }
  /** Nothing watches a dry run's writes. */
  async watch(): Promise<WatchHandle> {
    return { stop: async () => {} };
  }
  /** Nothing follows a dry run: it has no change stream of its own. */
  async scan(prefix: string): Promise<KvScan> {
    const { entries, revision } = await this.list(prefix);
    return {
      revision,
      pages: (async function* () {
        yield entries;
      })(),
    };
  }
  resumePoint(after: Revision): Promise<ResumePoint> {
    return this.inner.resumePoint(after);
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  async close(): Promise<void> {
    this.local.clear();
  }
  /** Writes a real run would have made (creates, updates and deletes of distinct keys). */
  get pendingWrites(): number {
    return this.local.size;
  }

  private put(key: string, value: Uint8Array): Revision {
    const revision = ++this.revision;
    this.local.set(key, { key, value: value.slice(), revision });
    return revision;
  }
}
