import { Redis, type RedisOptions } from "ioredis";
import type { Revision } from "../../domain/binding.js";
import { KvUnavailable, RevisionConflict } from "../../domain/errors.js";
import type {
  IdentityKv,
  KvChange,
  KvEntry,
  KvScan,
  ResumePoint,
  WatchHandle,
  WriteOptions,
} from "../../ports/identity-kv.js";
import { resumePointFromLog } from "./change-log.js";
import { silentLogger, type Logger } from "../../ports/logger.js";
import { describe, isRevision, KvBoundary } from "./kv-boundary.js";
import { CREATE, DELETE, UPDATE, type Script } from "./redis-scripts.js";
import { checkPageSize } from "./scan-page.js";

export interface RedisKvOptions {
  /** `redis://host:port/db`. */
  readonly url: string;
  /** Prepended to every Redis key this store uses (entries, revision counter, change stream). */
  readonly keyPrefix: string;
  /** Bound on every call, in milliseconds. */
  readonly timeoutMs?: number;
  /** Changes kept in the change stream for watches to resume from (approximate, trimmed by XADD). */
  readonly changeLogMaxLen?: number;
  readonly log?: Logger;
}

type WithScripts = Redis & { idmapCreate: Script; idmapUpdate: Script; idmapDelete: Script };

/**
 * IdentityKv on Redis (ioredis): one Lua script per conditional write keeps a revision per key and
 * a store-wide revision counter; batch reads are one pipeline; watches read the change stream
 * (XREAD), which lets them resume from a revision. Expiry is PEXPIRE on the key.
 *
 * ioredis would queue commands while disconnected and re-send unanswered ones after a reconnect: a
 * CAS script re-sent after it ran would fail its own revision check and look like a conflict. Both
 * are off here: a call while disconnected fails at once (KvUnavailable, never sent), and a call in
 * flight when the connection drops fails (WriteOutcomeUnknown for writes; the caller re-reads).
 */
export class RedisKv implements IdentityKv {
  readonly backend = "redis";
  private readonly redis: WithScripts;
  private readonly p: string;
  private readonly timeoutMs: number;
  private readonly maxLen: number;
  private readonly log: Logger;
  private readonly boundary: KvBoundary;
  private readonly watches = new Set<{ stop(): Promise<void> }>();

  constructor(options: RedisKvOptions) {
    this.p = options.keyPrefix;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxLen = options.changeLogMaxLen ?? 100_000;
    this.log = options.log ?? silentLogger;
    this.redis = new Redis(options.url, connectionOptions(this.timeoutMs)) as WithScripts;
    this.redis.on("error", (e: Error) => this.log.warn({ backend: "redis", err: e.message }, "redis connection error"));
    for (const [name, lua] of [
      ["idmapCreate", CREATE],
      ["idmapUpdate", UPDATE],
      ["idmapDelete", DELETE],
    ] as const) {
      this.redis.defineCommand(name, { numberOfKeys: 3, lua });
    }
    this.boundary = new KvBoundary(
      "redis",
      this.timeoutMs,
      (e) => e instanceof NotConnected || (e instanceof Error && /enableOfflineQueue/.test(e.message)),
    );
  }

  /** Connects and checks the server answers. */
  static async open(options: RedisKvOptions): Promise<RedisKv> {
    const kv = new RedisKv(options);
    try {
      await kv.boundary.read("connect", () => kv.redis.connect());
      await kv.ping();
    } catch (e) {
      kv.redis.disconnect();
      throw new KvUnavailable(`redis: cannot reach ${redactUrl(options.url)}: ${describe(e)}`, { cause: e });
    }
    return kv;
  }

  async get(key: string): Promise<KvEntry | null> {
    return this.boundary.read("get", async () => {
      this.checkConnected();
      return toEntry(key, await this.redis.hmgetBuffer(this.entryKey(key), "v", "r"));
    });
  }

  /** One pipeline: every distinct key in one round trip. */
  async getMany(keys: readonly string[]): Promise<(KvEntry | null)[]> {
    if (keys.length === 0) return [];
    const unique = [...new Set(keys)];
    const found = await this.boundary.read("get_many", () => this.readAll(unique));
    return keys.map((k) => found.get(k) ?? null);
  }

  async create(key: string, value: Uint8Array, options?: WriteOptions): Promise<Revision> {
    return this.script(
      "create",
      key,
      (k, s) =>
        this.redis.idmapCreate(k, this.counterKey, this.streamKey, toBuffer(value), ttl(options), key, this.maxLen, s),
      "",
    );
  }

  async update(key: string, value: Uint8Array, revision: Revision, options?: WriteOptions): Promise<Revision> {
    if (!isRevision(revision)) throw new RevisionConflict(key);
    return this.script(
      "update",
      key,
      (k, s) =>
        this.redis.idmapUpdate(k, this.counterKey, this.streamKey, toBuffer(value), ttl(options), key, this.maxLen, s),
      String(revision),
    );
  }

  async delete(key: string, revision: Revision): Promise<void> {
    if (!isRevision(revision)) throw new RevisionConflict(key);
    await this.script(
      "delete",
      key,
      (k, s) => this.redis.idmapDelete(k, this.counterKey, this.streamKey, "", 0, key, this.maxLen, s),
      String(revision),
    );
  }

  /**
   * The store revision is read first, then the keys (SCAN, then one pipelined read): the listing is
   * at least as new as the revision, so a watch after it misses nothing. SCAN walks the whole
   * keyspace of the database; a dedicated database per store keeps that cheap.
   */
  async list(prefix: string): Promise<{ entries: KvEntry[]; revision: Revision }> {
    return this.boundary.read("list", async () => {
      this.checkConnected();
      const revision = Number((await this.redis.get(this.counterKey)) ?? 0);
      const keys = new Set<string>();
      const skip = this.entryKey("").length;
      let cursor = "0";
      do {
        const [next, batch] = await this.redis.scan(
          cursor,
          "MATCH",
          `${globEscape(this.entryKey(prefix))}*`,
          "COUNT",
          1000,
        );
        cursor = next;
        for (const k of batch) keys.add(k.slice(skip));
      } while (cursor !== "0");
      const found = await this.readAll([...keys].sort());
      return { entries: [...found.values()], revision };
    });
  }

  /**
   * The counter first, then SCAN batches, each read in one pipeline. SCAN may return a key twice
   * (the keyspace rehashing mid-walk): the keys already sent are remembered (keys only, no values)
   * so each entry comes once. SCAN's COUNT is a hint, so a page may be larger than `pageSize`.
   */
  async scan(prefix: string, pageSize: number): Promise<KvScan> {
    checkPageSize(pageSize);
    const revision = await this.boundary.read("scan", async () => {
      this.checkConnected();
      return Number((await this.redis.get(this.counterKey)) ?? 0);
    });
    const self = this;
    const skip = this.entryKey("").length;
    const match = `${globEscape(this.entryKey(prefix))}*`;
    async function* pages(): AsyncGenerator<readonly KvEntry[]> {
      const seen = new Set<string>();
      let cursor = "0";
      do {
        const [next, batch] = await self.boundary.read("scan", () => {
          self.checkConnected();
          return self.redis.scan(cursor, "MATCH", match, "COUNT", pageSize);
        });
        cursor = next;
        const keys = batch.map((k) => k.slice(skip)).filter((k) => !seen.has(k));
        for (const k of keys) seen.add(k);
        if (keys.length === 0) continue;
        const found = await self.boundary.read("scan", () => self.readAll(keys.sort()));
        if (found.size > 0) yield [...found.values()];
      } while (cursor !== "0");
    }
    return { revision, pages: pages() };
  }

  /** The stream's first entry is the oldest change kept; the counter is the newest revision. */
  async resumePoint(afterRevision: Revision): Promise<ResumePoint> {
    return this.boundary.read("resume_point", async () => {
      this.checkConnected();
      const [first, head] = await Promise.all([
        this.redis.xrange(this.streamKey, "-", "+", "COUNT", 1),
        this.redis.get(this.counterKey),
      ]);
      const oldest = first[0] ? Number.parseInt(first[0][0], 10) : null;
      return resumePointFromLog(afterRevision, Number(head ?? 0), oldest);
    });
  }

  /**
   * Reads the change stream from `afterRevision` on a connection of its own (XREAD blocks it). The
   * stream keeps the last `changeLogMaxLen` changes: a watch resuming from before them gets onError.
   * A broken connection is retried from the last revision delivered.
   */
  async watch(
    prefix: string,
    afterRevision: Revision,
    onChange: (c: KvChange) => void,
    onError: (e: Error) => void,
  ): Promise<WatchHandle> {
    const blockMs = 1_000;
    const conn = this.redis.duplicate({ ...connectionOptions(this.timeoutMs + blockMs), lazyConnect: true });
    conn.on("error", () => {}); // reported through the read loop
    let cursor = afterRevision;
    // The change at `cursor` as the stream held it: after a reconnect it must still be there, or
    // the store lost changes (a restart without persistence) and revisions are being handed out again.
    let mark: Buffer[] | undefined;
    let stopped = false;
    let wake: (() => void) | undefined;
    let compacted: string | null;
    try {
      compacted = await this.boundary.read("watch", async () => {
        await conn.connect();
        const check = await this.resumeCheck(conn, cursor, undefined);
        mark = check.mark;
        return check.reason;
      });
    } catch (e) {
      conn.disconnect();
      throw e;
    }
    if (compacted) {
      conn.disconnect();
      const reason = compacted;
      queueMicrotask(() => onError(new KvUnavailable(`redis: ${reason}`)));
      return { stop: async () => {} };
    }

    const loop = (async () => {
      let failures = 0;
      let recheck = false;
      while (!stopped) {
        try {
          if (recheck) {
            const { reason } = await this.resumeCheck(conn, cursor, mark);
            if (reason) {
              stopped = true;
              onError(new KvUnavailable(`redis: ${reason}`));
              return;
            }
            recheck = false;
          }
          const res = (await conn.xreadBuffer(
            "COUNT",
            1000,
            "BLOCK",
            blockMs,
            "STREAMS",
            this.streamKey,
            `${cursor}-0`,
          )) as [Buffer, [Buffer, Buffer[]][]][] | null;
          failures = 0;
          for (const [id, fields] of res?.[0]?.[1] ?? []) {
            if (stopped) return;
            const revision = Number.parseInt(id.toString(), 10);
            cursor = revision;
            mark = fields;
            const change = fromFields(fields, revision);
            if (change.key.startsWith(prefix)) onChange(change);
          }
        } catch (e) {
          if (stopped) return;
          recheck = true;
          const delay = Math.min(5_000, 100 * 2 ** failures++);
          this.log.warn({ backend: "redis", err: describe(e), retryInMs: delay }, "redis watch read failed; resuming");
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, delay);
          });
        }
      }
    })();

    const handle = {
      stop: async () => {
        stopped = true;
        conn.disconnect();
        wake?.();
        await loop;
        this.watches.delete(handle);
      },
    };
    this.watches.add(handle);
    return handle;
  }

  async ping(): Promise<void> {
    await this.boundary.read("ping", async () => {
      this.checkConnected();
      await this.redis.ping();
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.stop()));
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /**
   * Keeps only the newest `keep` changes of the change stream (XADD trims approximately on its own
   * at `changeLogMaxLen`; this is exact). Watches resuming before them fail as compacted.
   */
  async trimChanges(keep: number): Promise<void> {
    await this.boundary.read("trim", async () => {
      this.checkConnected();
      await this.redis.xtrim(this.streamKey, "MAXLEN", keep);
    });
  }

  /** Deletes every Redis key of this store (tests, benchmarks). */
  async destroy(): Promise<void> {
    await this.boundary.read("destroy", async () => {
      let cursor = "0";
      do {
        const [next, batch] = await this.redis.scan(cursor, "MATCH", `${globEscape(this.p)}*`, "COUNT", 1000);
        cursor = next;
        if (batch.length > 0) await this.redis.unlink(...batch);
      } while (cursor !== "0");
    });
  }

  private get counterKey(): string {
    return `${this.p}rev`;
  }

  private get streamKey(): string {
    return `${this.p}changes`;
  }

  private entryKey(key: string): string {
    return `${this.p}e:${key}`;
  }

  private async script(
    op: string,
    key: string,
    run: (entryKey: string, expected: string) => Promise<number>,
    expected: string,
  ): Promise<Revision> {
    return this.boundary.write(op, async () => {
      this.checkConnected();
      const r = Number(await run(this.entryKey(key), expected));
      if (r === 0) throw new RevisionConflict(key);
      return r;
    });
  }

  private async readAll(keys: readonly string[]): Promise<Map<string, KvEntry>> {
    this.checkConnected();
    const pipeline = this.redis.pipeline();
    for (const k of keys) pipeline.hmgetBuffer(this.entryKey(k), "v", "r");
    const results = (await pipeline.exec()) ?? [];
    const found = new Map<string, KvEntry>();
    keys.forEach((k, i) => {
      const [err, reply] = results[i] ?? [new Error("no reply")];
      if (err) throw err;
      const e = toEntry(k, reply as (Buffer | null)[]);
      if (e) found.set(k, e);
    });
    return found;
  }

  /**
   * Why a watch cannot resume from `after`, or null; and the change at `after` as the stream holds it
   * now. Its changes may have been trimmed from the stream (compacted), or the store may have lost
   * them: a Redis restarted without persistence starts its counter again, hands out revisions the
   * watcher has already seen, and a watch resuming from its cursor would silently miss every change
   * until the counter passed it. `mark` (the change the watcher saw at `after`) tells the two apart.
   */
  private async resumeCheck(
    conn: Redis,
    after: Revision,
    mark: Buffer[] | undefined,
  ): Promise<{ reason: string | null; mark?: Buffer[] }> {
    const [first, head, at] = await Promise.all([
      conn.xrange(this.streamKey, "-", "+", "COUNT", 1),
      conn.get(this.counterKey),
      after > 0
        ? conn.xrangeBuffer(this.streamKey, `${after}-0`, `${after}-0`)
        : Promise.resolve([] as [Buffer, Buffer[]][]),
    ]);
    const current = Number(head ?? 0);
    const oldest = first[0] ? Number.parseInt(first[0][0], 10) : current + 1;
    const fields = at[0]?.[1];
    if (after > current)
      return {
        reason:
          `revision ${after} is ahead of the store's ${current}: the store lost changes (restarted without ` +
          `persistence?)`,
      };
    if (after < current && after < oldest - 1)
      return { reason: `revision ${after} is compacted (oldest kept ${oldest})` };
    if (mark && after >= oldest && !(fields && sameFields(fields, mark))) {
      return {
        reason:
          `revision ${after} now names another change than the one delivered: the store lost changes ` +
          `(restarted without persistence?)`,
      };
    }
    return { reason: null, ...(fields ? { mark: fields } : {}) };
  }

  private checkConnected(): void {
    if (this.redis.status !== "ready") throw new NotConnected(`not connected (${this.redis.status})`);
  }
}

class NotConnected extends Error {
  override readonly name = "NotConnected";
}

function connectionOptions(timeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    // Fail commands in flight as soon as the connection drops instead of holding them for a resend.
    maxRetriesPerRequest: 0,
    // Keep reconnecting for as long as the service runs.
    retryStrategy: (attempt: number) => Math.min(2_000, attempt * 100),
  };
}

function sameFields(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  return a.length === b.length && a.every((x, i) => x.equals(b[i]!));
}

function toEntry(key: string, reply: (Buffer | null)[]): KvEntry | null {
  const [v, r] = reply;
  if (!v || !r) return null;
  return { key, value: new Uint8Array(v), revision: Number(r.toString()) };
}

function fromFields(fields: Buffer[], revision: number): KvChange {
  let key = "";
  let value: Uint8Array | null = null;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString();
    if (name === "k") key = fields[i + 1]!.toString("utf8");
    else if (name === "v") value = new Uint8Array(fields[i + 1]!);
  }
  return { key, value, revision };
}

function toBuffer(v: Uint8Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function ttl(options: WriteOptions | undefined): number {
  return options?.ttlMs && options.ttlMs > 0 ? Math.ceil(options.ttlMs) : 0;
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@");
}
