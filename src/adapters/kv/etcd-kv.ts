import {
  ClientClosedError,
  Etcd3,
  GRPCUnavailableError,
  type IDuplexStream,
  type IKeyValue,
  type IOptions,
  type IWatchRequest,
  type IWatchResponse,
} from "etcd3";
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
import { silentLogger, type Logger } from "../../ports/logger.js";
import { isRevision, KvBoundary, mapConcurrent } from "./kv-boundary.js";
import { checkPageSize } from "./scan-page.js";

export interface EtcdKvOptions {
  /** `http://host:port` endpoints of one cluster. */
  readonly endpoints: readonly string[];
  /** Prepended to every key (isolates stores, or test runs, on one cluster). */
  readonly keyPrefix?: string;
  /** Bound on every call, in milliseconds. */
  readonly timeoutMs?: number;
  readonly log?: Logger;
}

/** etcd's default --max-txn-ops: operations allowed in one transaction. */
const MAX_TXN_OPS = 128;
const LIST_PAGE = 1000;

/**
 * The etcd3 client retries a failed call up to three times by default (its "global" policy). For a
 * transaction whose reply was lost that re-sends a write that may have been applied, and the retry
 * then reports a conflict with itself (or, for a create, "failed" although applied). This policy runs
 * each call once; a lost reply surfaces as WriteOutcomeUnknown and the caller re-reads. The per-host
 * circuit breaker stays on a cluster of several endpoints: it only skips hosts, it never re-sends a
 * call that went through. With a single endpoint there is nothing to skip to, and the breaker only
 * prolongs an outage: after three consecutive failures (a stalled server: a write and two re-reads
 * timing out) it refused every call for 5 s after etcd answered again. There, calls run once too.
 */
const runOnce = {
  execute: (fn: (context: { signal: AbortSignal }) => unknown) =>
    Promise.resolve().then(() => fn({ signal: new AbortController().signal })),
};

/**
 * On a cluster, a call that certainly never left the process (no connection to the member picked, or
 * its circuit open) is tried on the next member, up to once per member: with one member down, every
 * call still reaches a live one instead of failing one time in three. A call that was sent is never
 * re-sent (see runOnce). The pool hands each attempt the next member of its shuffled order.
 */
function untilSentToOneOf(members: number) {
  return {
    execute: async (fn: (context: { signal: AbortSignal }) => unknown) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await fn({ signal: new AbortController().signal });
        } catch (e) {
          if (attempt >= members || !neverSent(e)) throw e;
        }
      }
    },
  };
}

/**
 * IdentityKv on etcd v3 (etcd3). Revisions are etcd's store revision (a key's mod revision); CAS is
 * a transaction comparing the mod revision (create: create revision 0), and a failed compare is a
 * RevisionConflict. Batch reads are transactions of up to 128 ranges. Expiry uses leases shared by
 * all writes whose expiry falls in the same time slot.
 */
export class EtcdKv implements IdentityKv {
  readonly backend = "etcd";
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly log: Logger;
  private readonly boundary: KvBoundary;
  /** Lease per expiry slot (end of slot, ms since epoch): one grant serves every write in the slot. */
  private readonly leases = new Map<number, Promise<string>>();
  private readonly watches = new Set<{ stop(): Promise<void> }>();

  constructor(options: EtcdKvOptions) {
    this.prefix = options.keyPrefix ?? "";
    const timeoutMs = options.timeoutMs ?? 10_000;
    this.log = options.log ?? silentLogger;
    this.client = new Etcd3({
      hosts: [...options.endpoints],
      dialTimeout: timeoutMs,
      // Unary calls carry a deadline; watch streams live until stopped.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeoutMs }),
      faultHandling: {
        global: (options.endpoints.length === 1
          ? runOnce
          : untilSentToOneOf(options.endpoints.length)) as unknown as NonNullable<IOptions["faultHandling"]>["global"],
        ...(options.endpoints.length === 1
          ? {
              host: () => runOnce as unknown as ReturnType<NonNullable<NonNullable<IOptions["faultHandling"]>["host"]>>,
            }
          : {}),
      },
    });
    const endpoints = [...options.endpoints];
    this.boundary = new KvBoundary("etcd", timeoutMs, neverSent, () => quorumLost(endpoints));
  }

  /** Creates the client and checks the cluster answers. */
  static async open(options: EtcdKvOptions): Promise<EtcdKv> {
    const kv = new EtcdKv(options);
    try {
      await kv.ping();
    } catch (e) {
      await kv.close();
      throw new KvUnavailable(
        `etcd: cannot reach ${options.endpoints.join(",")}: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    }
    return kv;
  }

  async get(key: string): Promise<KvEntry | null> {
    return this.boundary.read("get", async () => {
      const r = await this.client.kv.range({ key: this.k(key) });
      return this.toEntry(r.kvs[0]);
    });
  }

  /** Distinct keys in transactions of up to 128 ranges each: one round trip per chunk, 16 chunks in flight. */
  async getMany(keys: readonly string[]): Promise<(KvEntry | null)[]> {
    if (keys.length === 0) return [];
    const unique = [...new Set(keys)];
    const chunks: string[][] = [];
    for (let i = 0; i < unique.length; i += MAX_TXN_OPS) chunks.push(unique.slice(i, i + MAX_TXN_OPS));
    const found = new Map<string, KvEntry>();
    await this.boundary.read("get_many", () =>
      mapConcurrent(chunks, 16, async (chunk) => {
        const r = await this.client.kv.txn({ success: chunk.map((k) => ({ request_range: { key: this.k(k) } })) });
        for (const op of r.responses) {
          const e = this.toEntry(op.response_range?.kvs[0]);
          if (e) found.set(e.key, e);
        }
      }),
    );
    return keys.map((k) => found.get(k) ?? null);
  }

  async create(key: string, value: Uint8Array, options?: WriteOptions): Promise<Revision> {
    return this.cas(key, { target: "Create", create_revision: 0 }, value, options);
  }

  async update(key: string, value: Uint8Array, revision: Revision, options?: WriteOptions): Promise<Revision> {
    // An absent key has mod revision 0: comparing against 0 would turn an update into a create.
    if (!isRevision(revision)) throw new RevisionConflict(key);
    return this.cas(key, { target: "Mod", mod_revision: revision }, value, options);
  }

  async delete(key: string, revision: Revision): Promise<void> {
    if (!isRevision(revision)) throw new RevisionConflict(key);
    await this.boundary.write("delete", async () => {
      const r = await this.client.kv.txn({
        compare: [{ key: this.k(key), result: "Equal", target: "Mod", mod_revision: revision }],
        success: [{ request_delete_range: { key: this.k(key) } }],
      });
      if (!r.succeeded) throw new RevisionConflict(key);
    });
  }

  /** A snapshot at one revision, read in pages pinned to that revision. */
  async list(prefix: string): Promise<{ entries: KvEntry[]; revision: Revision }> {
    return this.boundary.read("list", async () => {
      // etcd refuses an empty key; "\0" up to "\0" means the whole keyspace.
      const start = prefix === "" && this.prefix === "" ? Buffer.from([0]) : this.k(prefix);
      const end = prefixEnd(this.k(prefix));
      const entries: KvEntry[] = [];
      let from = start;
      let revision: string | undefined;
      for (;;) {
        const r = await this.client.kv.range({
          key: from,
          range_end: end,
          limit: LIST_PAGE,
          ...(revision ? { revision } : {}),
        });
        revision ??= r.header.revision;
        for (const kv of r.kvs) entries.push(this.toEntry(kv)!);
        const last = r.kvs[r.kvs.length - 1];
        if (!r.more || !last) break;
        from = Buffer.concat([last.key, Buffer.from([0])]);
      }
      return { entries, revision: Number(revision) };
    });
  }

  /** Pages of the keyspace at one revision: the first page's, to which every later page is pinned. */
  async scan(prefix: string, pageSize: number): Promise<KvScan> {
    checkPageSize(pageSize);
    const start = prefix === "" && this.prefix === "" ? Buffer.from([0]) : this.k(prefix);
    const end = prefixEnd(this.k(prefix));
    const first = await this.boundary.read("scan", () =>
      this.client.kv.range({ key: start, range_end: end, limit: pageSize }),
    );
    const revision = first.header.revision;
    const self = this;
    async function* pages(): AsyncGenerator<readonly KvEntry[]> {
      let r = first;
      for (;;) {
        if (r.kvs.length > 0) yield r.kvs.map((kv) => self.toEntry(kv)!);
        const last = r.kvs[r.kvs.length - 1];
        if (!r.more || !last) return;
        const from = Buffer.concat([last.key, Buffer.from([0])]);
        r = await self.boundary.read("scan", () =>
          self.client.kv.range({ key: from, range_end: end, limit: pageSize, revision }),
        );
      }
    }
    return { revision: Number(revision), pages: pages() };
  }

  /**
   * etcd keeps every revision since its last compaction. A read at `afterRevision + 1` answers
   * whether that is still so (etcd refuses a compacted revision); the header says the newest.
   */
  async resumePoint(afterRevision: Revision): Promise<ResumePoint> {
    const key = this.prefix === "" ? Buffer.from([0]) : this.k("");
    return this.boundary.read("resume_point", async () => {
      const now = await this.client.kv.range({ key, limit: 1, count_only: true });
      const head = Number(now.header.revision);
      if (afterRevision > head)
        return {
          head,
          resumable: false,
          reason: `revision ${afterRevision} is ahead of the store's ${head}: the store lost changes`,
        };
      if (afterRevision === head) return { head, resumable: true };
      try {
        await this.client.kv.range({ key, limit: 1, count_only: true, revision: String(afterRevision + 1) });
        return { head, resumable: true };
      } catch (e) {
        if (!/compacted/.test(e instanceof Error ? e.message : String(e))) throw e;
        return { head, resumable: false, reason: `revision ${afterRevision} is compacted` };
      }
    });
  }

  /**
   * One watch stream from `afterRevision + 1`. After a broken stream it reconnects from the last
   * revision delivered; a compacted start revision ends the watch through onError.
   */
  async watch(
    prefix: string,
    afterRevision: Revision,
    onChange: (c: KvChange) => void,
    onError: (e: Error) => void,
  ): Promise<WatchHandle> {
    const key = prefix === "" && this.prefix === "" ? Buffer.from([0]) : this.k(prefix);
    const rangeEnd = prefixEnd(this.k(prefix));
    let cursor = afterRevision;
    let stopped = false;
    let stream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined;
    let retry: NodeJS.Timeout | undefined;
    let failures = 0;

    const fail = (e: Error) => {
      if (stopped) return;
      stopped = true;
      stream?.cancel();
      onError(e);
    };

    /** Resolves when etcd confirms the watch (or the watch ends); rejects when no stream could be opened. */
    const connect = async (): Promise<void> => {
      const s = await this.client.watchClient.watch();
      stream = s;
      await new Promise<void>((resolve, reject) => {
        let created = false;
        s.on("data", (res: IWatchResponse) => {
          if (stopped || stream !== s) return;
          if (res.canceled) {
            const reason =
              Number(res.compact_revision) > 0
                ? `revision ${cursor + 1} is compacted (oldest kept ${res.compact_revision})`
                : `watch canceled by etcd: ${res.cancel_reason}`;
            fail(new KvUnavailable(`etcd: ${reason}`));
            resolve();
            return;
          }
          if (res.created) {
            created = true;
            failures = 0;
            resolve();
          }
          for (const ev of res.events) {
            const revision = Number(ev.kv.mod_revision);
            // One revision can carry several events (a transaction, a lease expiring several keys).
            if (revision < cursor) continue;
            cursor = revision;
            const k = ev.kv.key.toString("utf8").slice(this.prefix.length);
            onChange({ key: k, value: ev.type === "Delete" ? null : new Uint8Array(ev.kv.value), revision });
          }
        });
        const broken = (e: Error) => {
          if (stream !== s) return;
          stream = undefined;
          if (!created) reject(e);
          else if (!stopped) reconnect(e);
        };
        s.on("error", broken);
        s.on("end", () => broken(new Error("watch stream ended")));
        s.write({ create_request: { key, range_end: rangeEnd, start_revision: cursor + 1 } });
      });
    };

    const reconnect = (cause: Error) => {
      const delay = Math.min(5_000, 100 * 2 ** failures++);
      this.log.warn({ backend: "etcd", err: cause.message, retryInMs: delay }, "etcd watch stream broken; resuming");
      retry = setTimeout(() => {
        if (stopped) return;
        connect().catch((e: Error) => reconnect(e));
      }, delay);
    };

    try {
      await this.boundary.read("watch", connect);
    } catch (e) {
      stopped = true;
      stream?.cancel();
      throw e;
    }
    const handle = {
      stop: async () => {
        stopped = true;
        clearTimeout(retry);
        stream?.cancel();
        this.watches.delete(handle);
      },
    };
    this.watches.add(handle);
    return handle;
  }

  async ping(): Promise<void> {
    await this.boundary.read("ping", () => this.client.maintenance.status({}));
  }

  async close(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.stop()));
    this.client.close();
  }

  /**
   * Compacts the cluster's history up to its newest revision: what an operator's (or etcd's own
   * --auto-compaction) housekeeping does. It is cluster-wide, not per prefix: watches of every store
   * on the cluster resuming before it fail as compacted.
   */
  async compactHistory(): Promise<void> {
    await this.boundary.read("compact", async () => {
      const now = await this.client.kv.range({ key: Buffer.from([0]), limit: 1, count_only: true });
      await this.client.kv.compact({ revision: now.header.revision, physical: true });
    });
  }

  /** Deletes every key under this store's prefix (tests, benchmarks). */
  async destroy(): Promise<void> {
    if (this.prefix === "") throw new Error("etcd: refusing to delete an unprefixed store");
    await this.boundary.read("destroy", () =>
      this.client.kv.deleteRange({ key: this.k(""), range_end: prefixEnd(this.k("")) }),
    );
  }

  private async cas(
    key: string,
    compare: { target: "Create"; create_revision: 0 } | { target: "Mod"; mod_revision: number },
    value: Uint8Array,
    options: WriteOptions | undefined,
  ): Promise<Revision> {
    // Granting a lease sends no write of the key: its failure is an outage, not an unknown outcome.
    const lease = options?.ttlMs
      ? await this.boundary.read("lease_grant", () => this.leaseFor(options.ttlMs!))
      : undefined;
    return this.boundary.write(compare.target === "Create" ? "create" : "update", async () => {
      try {
        const r = await this.client.kv.txn({
          compare: [{ key: this.k(key), result: "Equal", ...compare }],
          success: [
            {
              request_put: {
                key: this.k(key),
                value: Buffer.from(value.buffer, value.byteOffset, value.byteLength),
                ...(lease ? { lease } : {}),
              },
            },
          ],
        });
        if (!r.succeeded) throw new RevisionConflict(key);
        return Number(r.header.revision);
      } catch (e) {
        // A lease that vanished (etcd restored from a backup, say) must not poison later writes.
        if (lease && !(e instanceof RevisionConflict)) this.forgetLease(lease);
        throw e;
      }
    });
  }

  /**
   * A lease that ends no earlier than `now + ttlMs` and at most one slot later. Slots are a tenth of
   * the TTL (between 1 s and 10 min), so a steady write load grants about ten leases per TTL period
   * instead of one per write. A key expires with the lease it was last written under.
   */
  private leaseFor(ttlMs: number): Promise<string> {
    const now = Date.now();
    const slot = Math.min(600_000, Math.max(1_000, Math.round(ttlMs / 10)));
    const end = Math.ceil((now + ttlMs) / slot) * slot;
    for (const [e] of this.leases) if (e <= now) this.leases.delete(e);
    let lease = this.leases.get(end);
    if (!lease) {
      const ttlSeconds = Math.ceil((end - now) / 1000);
      lease = this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }).then((r) => r.ID);
      lease.catch(() => this.leases.delete(end));
      this.leases.set(end, lease);
    }
    return lease;
  }

  private forgetLease(id: string): void {
    for (const [end, p] of this.leases)
      void p.then(
        (v) => v === id && this.leases.delete(end),
        () => {},
      );
  }

  private k(key: string): Buffer {
    return Buffer.from(this.prefix + key, "utf8");
  }

  private toEntry(kv: IKeyValue | undefined): KvEntry | null {
    if (!kv) return null;
    return {
      key: kv.key.toString("utf8").slice(this.prefix.length),
      value: new Uint8Array(kv.value),
      revision: Number(kv.mod_revision),
    };
  }
}

/**
 * Errors that prove a call never left the process: a closed client, an open circuit breaker, and
 * grpc-js's "No connection established" (no connection was ready to carry the call: etcd is down or
 * unreachable). Only those make a failed write certainly not applied (KvUnavailable, answered at
 * once); any other failure of a write leaves its outcome unknown, to be settled by re-reading.
 */
function neverSent(e: unknown): boolean {
  if (e instanceof ClientClosedError || (e as { isBrokenCircuitError?: boolean })?.isBrokenCircuitError === true)
    return true;
  // grpc-js has no structured flag for it; this is its picker's message when no subchannel is ready.
  return e instanceof GRPCUnavailableError && e.message.includes("No connection established");
}

/** How long a failed call waits for the members' health before answering. */
const QUORUM_PROBE_MS = 500;

/**
 * After a failed call on a cluster: a description when no member reports a leader. A member's
 * /health (on its client URL) is true only while it sees a leader, and a cluster without a majority
 * elects none. With one endpoint there is nothing to tell apart: the member is down, or it is not.
 */
async function quorumLost(endpoints: readonly string[]): Promise<string | undefined> {
  if (endpoints.length <= 1) return undefined;
  const states = await Promise.all(
    endpoints.map(async (endpoint) => {
      try {
        const r = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(QUORUM_PROBE_MS) });
        const body = (await r.json()) as { health?: string };
        return body.health === "true" ? "leader" : "no leader";
      } catch {
        return "silent";
      }
    }),
  );
  if (states.includes("leader")) return undefined;
  const answering = states.filter((s) => s === "no leader").length;
  return `no member of ${endpoints.length} has a leader; ${answering} answer`;
}

/** The smallest key after every key that starts with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every key: the whole keyspace
}
