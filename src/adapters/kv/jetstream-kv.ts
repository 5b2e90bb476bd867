import {
  DeliverPolicy,
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { Kvm, KvWatchInclude, type KV, type KvEntry as NatsEntry } from "@nats-io/kv";
import { connect, NoRespondersError, RequestError, type NatsConnection } from "@nats-io/transport-node";
import type { Revision } from "../../domain/binding.js";
import { ConfigError, InvalidArgument, KvUnavailable, RevisionConflict } from "../../domain/errors.js";
import type { IdentityKv, KvChange, KvEntry, KvScan, ResumePoint, WatchHandle } from "../../ports/identity-kv.js";
import { resumePointFromLog } from "./change-log.js";
import { silentLogger, type Logger } from "../../ports/logger.js";
import { describe, isRevision, KvBoundary, mapConcurrent } from "./kv-boundary.js";
import { checkPageSize } from "./scan-page.js";

export interface JetStreamKvOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`. */
  readonly servers: string | readonly string[];
  /** Bucket name (`[-_A-Za-z0-9]+`); created when missing with the settings below. */
  readonly bucket: string;
  readonly replicas?: number;
  /** Values kept per key (1 = only the latest). */
  readonly history?: number;
  /** Bucket size limit in bytes; -1 = unlimited. A full bucket refuses writes. */
  readonly maxBytes?: number;
  /** Bound on every call, in milliseconds. */
  readonly timeoutMs?: number;
  readonly log?: Logger;
}

/** NATS KV keys: subject-safe characters, no empty token (leading, trailing or doubled dot). */
const VALID_KEY = /^[-/_=.A-Za-z0-9]+$/;

/**
 * The longest key sent. A request's subject (`$JS.API.DIRECT.GET.KV_<bucket>.$KV.<bucket>.<key>`)
 * must fit the server's control line (max_control_line, 4 KiB by default): over it, the server
 * drops the whole connection, and every call in flight with it. Keys the service makes stay far
 * below (an identifier of 256 bytes encodes to at most 768).
 */
export const MAX_NATS_KEY_BYTES = 2_048;

export function validateNatsKey(key: string): void {
  if (!VALID_KEY.test(key) || key.startsWith(".") || key.endsWith(".") || key.includes("..")) {
    throw new InvalidArgument(
      "key",
      `${JSON.stringify(key)} is not a valid NATS KV key ([-/_=.A-Za-z0-9]+, no leading, trailing or doubled '.')`,
    );
  }
  // VALID_KEY admits ASCII only: length is bytes.
  if (key.length > MAX_NATS_KEY_BYTES)
    throw new InvalidArgument("key", `a NATS KV key of ${key.length} bytes is longer than ${MAX_NATS_KEY_BYTES}`);
}

/**
 * IdentityKv on a NATS JetStream KV bucket (@nats-io/kv). Revisions are stream sequences; CAS is the
 * publish header Nats-Expected-Last-Subject-Sequence, whose failure is API error 10071. Deletes are
 * delete markers in the stream: they read as absent here and `create` writes over them.
 *
 * Keys hold `/` and are one subject token except at dots, so no subject filter can select a key
 * prefix: list and watch read the whole bucket and filter by prefix in the client.
 */
export class JetStreamKv implements IdentityKv {
  readonly backend = "jetstream";
  private connected = true;
  private readonly boundary: KvBoundary;
  /** Calls waiting for a reply: failed at once when the connection drops (see `untilDisconnect`). */
  private readonly inFlight = new Set<(e: Error) => void>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    private readonly stream: string,
    private readonly bucket: string,
    private readonly log: Logger,
    timeoutMs: number,
    /** The bucket's replicas: above 1, a failed call asks whether the stream still has a quorum. */
    private readonly replicas: number,
  ) {
    // A call made while disconnected would sit in nats.js's reconnect buffer and might be sent much
    // later; refusing it up front makes the outcome certain (never sent).
    this.boundary = new KvBoundary(
      "jetstream",
      timeoutMs,
      (e) => e instanceof NotConnected || isNoResponders(e),
      () => this.quorumLost(),
    );
    void this.followStatus();
  }

  /** Connects, creates the bucket when missing, and checks it answers. */
  static async open(options: JetStreamKvOptions): Promise<JetStreamKv> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const log = options.log ?? silentLogger;
    const servers =
      typeof options.servers === "string" ? options.servers.split(",").map((s) => s.trim()) : [...options.servers];
    let nc: NatsConnection;
    try {
      // Reconnect forever: the service outlives outages; calls fail fast while disconnected. Every
      // 250 ms rather than nats.js's 2 s: a write whose reply a dropped connection lost is settled by
      // a re-read, which waits for the reconnect and must fit in the request's time.
      nc = await connect({
        servers,
        timeout: timeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        name: "identity-map",
      });
    } catch (e) {
      throw new KvUnavailable(`jetstream: cannot connect to ${servers.join(",")}: ${describe(e)}`, { cause: e });
    }
    try {
      const js = jetstream(nc, { timeout: timeoutMs });
      const jsm = await js.jetstreamManager();
      const history = options.history ?? 1;
      const replicas = options.replicas ?? 1;
      const maxBytes = options.maxBytes ?? -1;
      refuseUnsafeReplicas(replicas, nc.info?.version);
      const kvm = new Kvm(js);
      // Direct gets are answered by any replica, a follower that lags included: on a replicated
      // bucket a read could miss the write its own caller just made. Reads then go to the stream
      // leader (JetStream's message get), as docs/adr/0012-read-consistency-on-clusters.md explains.
      let kv = await kvm.create(options.bucket, {
        history,
        replicas,
        max_bytes: maxBytes,
        timeout: timeoutMs,
        allow_direct: replicas === 1,
      });
      const status = await kv.status();
      refuseUnsafeReplicas(status.replicas, nc.info?.version);
      if (status.replicas > 1 && replicas === 1) kv = await kvm.open(options.bucket, { allow_direct: false });
      if (status.history !== history || status.replicas !== replicas || status.max_bytes !== maxBytes) {
        log.warn(
          {
            bucket: options.bucket,
            want: { history, replicas, maxBytes },
            have: { history: status.history, replicas: status.replicas, maxBytes: status.max_bytes },
          },
          "existing JetStream KV bucket has other settings than configured; keeping the bucket's",
        );
      }
      return new JetStreamKv(
        nc,
        js,
        jsm,
        kv,
        status.streamInfo.config.name,
        options.bucket,
        log,
        timeoutMs,
        status.replicas,
      );
    } catch (e) {
      await nc.close().catch(() => {});
      if (e instanceof ConfigError) throw e;
      throw new KvUnavailable(`jetstream: cannot open bucket ${options.bucket}: ${describe(e)}`, { cause: e });
    }
  }

  async get(key: string): Promise<KvEntry | null> {
    validateNatsKey(key);
    return this.boundary.read("get", async () => {
      this.checkConnected();
      return toEntry(key, await this.untilDisconnect(() => this.kv.get(key)));
    });
  }

  /** NATS 2.9 has no multi-key read: one direct get per distinct key, up to 256 in flight at once. */
  async getMany(keys: readonly string[]): Promise<(KvEntry | null)[]> {
    keys.forEach(validateNatsKey);
    if (keys.length === 0) return [];
    const unique = [...new Set(keys)];
    const got = await this.boundary.read("get_many", async () => {
      this.checkConnected();
      return this.untilDisconnect(() =>
        mapConcurrent(unique, 256, async (k) => [k, toEntry(k, await this.kv.get(k))] as const),
      );
    });
    const byKey = new Map(got);
    return keys.map((k) => byKey.get(k) ?? null);
  }

  async create(key: string, value: Uint8Array): Promise<Revision> {
    validateNatsKey(key);
    // kv.create expects sequence 0 and, when the key's last message is a delete marker, retries once
    // expecting the marker's sequence: a deleted key can be created again.
    return this.boundary.write("create", async () => {
      this.checkConnected();
      return this.untilDisconnect(() => conflictOn(key, () => this.kv.create(key, value)));
    });
  }

  async update(key: string, value: Uint8Array, revision: Revision): Promise<Revision> {
    validateNatsKey(key);
    if (!isRevision(revision)) throw new RevisionConflict(key);
    return this.boundary.write("update", async () => {
      this.checkConnected();
      return this.untilDisconnect(() => conflictOn(key, () => this.kv.update(key, value, revision)));
    });
  }

  async delete(key: string, revision: Revision): Promise<void> {
    validateNatsKey(key);
    // kv.delete sends no expectation for a falsy previousSeq: that would be an unconditional delete.
    if (!isRevision(revision)) throw new RevisionConflict(key);
    await this.boundary.write("delete", async () => {
      this.checkConnected();
      await this.untilDisconnect(() => conflictOn(key, () => this.kv.delete(key, { previousSeq: revision })));
    });
  }

  /**
   * The stream's last sequence is read first, then the last message of every key: whatever the
   * listing shows is at least as new as that sequence, so a watch after it misses nothing (it may
   * repeat a change the listing already showed).
   */
  async list(prefix: string): Promise<{ entries: KvEntry[]; revision: Revision }> {
    return this.boundary.read("list", async () => {
      this.checkConnected();
      const info = await this.jsm.streams.info(this.stream);
      const revision = info.state.last_seq;
      const consumer = await this.js.consumers.getPushConsumer(this.stream, {
        filter_subjects: `$KV.${this.bucket}.>`,
        deliver_policy: DeliverPolicy.LastPerSubject,
      });
      const entries: KvEntry[] = [];
      let remaining = (await consumer.info(true)).num_pending;
      if (remaining > 0) {
        const subjectPrefix = `$KV.${this.bucket}.`.length;
        const messages = await consumer.consume();
        for await (const m of messages) {
          const key = m.subject.substring(subjectPrefix);
          const op = m.headers?.get("KV-Operation") ?? "";
          if (key.startsWith(prefix) && op !== "DEL" && op !== "PURGE")
            entries.push({ key, value: m.data, revision: m.seq });
          // The count taken at creation ends the listing; `pending` covers a message removed meanwhile.
          if (--remaining <= 0 || m.info.pending === 0) break;
        }
        messages.stop();
      }
      // The ordered consumer would expire on its own after 5 minutes of inactivity; do not wait.
      void consumer.delete().catch(() => {});
      entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      return { entries, revision };
    });
  }

  /**
   * `list`, a page at a time: the stream's last sequence first, then the last message of every key
   * through one consumer. Each entry is the key's latest value when it was read (at least as new as
   * the revision): with history 1 the stream holds no older one.
   */
  async scan(prefix: string, pageSize: number): Promise<KvScan> {
    checkPageSize(pageSize);
    const { revision, consumer, pending } = await this.boundary.read("scan", async () => {
      this.checkConnected();
      const info = await this.jsm.streams.info(this.stream);
      const consumer = await this.js.consumers.getPushConsumer(this.stream, {
        filter_subjects: `$KV.${this.bucket}.>`,
        deliver_policy: DeliverPolicy.LastPerSubject,
      });
      return { revision: info.state.last_seq, consumer, pending: (await consumer.info(true)).num_pending };
    });
    const subjectPrefix = `$KV.${this.bucket}.`.length;
    async function* pages(): AsyncGenerator<readonly KvEntry[]> {
      let remaining = pending;
      try {
        if (remaining <= 0) return;
        const messages = await consumer.consume();
        let page: KvEntry[] = [];
        try {
          for await (const m of messages) {
            const key = m.subject.substring(subjectPrefix);
            const op = m.headers?.get("KV-Operation") ?? "";
            if (key.startsWith(prefix) && op !== "DEL" && op !== "PURGE")
              page.push({ key, value: m.data, revision: m.seq });
            if (page.length >= pageSize) {
              yield page;
              page = [];
            }
            if (--remaining <= 0 || m.info.pending === 0) break;
          }
        } finally {
          messages.stop();
        }
        if (page.length > 0) yield page;
      } finally {
        void consumer.delete().catch(() => {});
      }
    }
    return { revision, pages: pages() };
  }

  /**
   * The bucket keeps the latest message of each key (history 1): a change at sequence s is gone
   * once its key changed again. A watch from `afterRevision + 1` still delivers every key's latest
   * state, but a delete marker a purge removed would be missed, so a watch is only resumed while the
   * stream's first sequence is no later than `afterRevision + 1`. That is cautious: it sends a
   * follower to a new snapshot once every key it could have missed has been rewritten.
   */
  async resumePoint(afterRevision: Revision): Promise<ResumePoint> {
    return this.boundary.read("resume_point", async () => {
      this.checkConnected();
      const { state } = await this.jsm.streams.info(this.stream);
      return resumePointFromLog(afterRevision, state.last_seq, state.messages > 0 ? state.first_seq : null);
    });
  }

  /**
   * An ordered push consumer from sequence `afterRevision + 1` over the whole bucket (see the class
   * comment), filtered here by prefix. With history 1 only the latest message of each key is kept,
   * so a resumed watch delivers the latest state of what changed, which is what a cache needs.
   */
  async watch(
    prefix: string,
    afterRevision: Revision,
    onChange: (c: KvChange) => void,
    onError: (e: Error) => void,
  ): Promise<WatchHandle> {
    const iter = await this.boundary.read("watch", async () => {
      this.checkConnected();
      return this.kv.watch({
        key: ">",
        include: KvWatchInclude.AllHistory,
        ...(afterRevision > 0 ? { resumeFromRevision: afterRevision + 1 } : {}),
      });
    });
    let stopped = false;
    const done = (async () => {
      try {
        for await (const e of iter) {
          if (stopped) break;
          if (e.revision <= afterRevision || !e.key.startsWith(prefix)) continue;
          const deleted = e.operation === "DEL" || e.operation === "PURGE";
          onChange({ key: e.key, value: deleted ? null : e.value, revision: e.revision });
        }
        if (!stopped)
          onError(
            new KvUnavailable(`jetstream: watch of bucket ${this.bucket} ended (bucket deleted or connection closed)`),
          );
      } catch (e) {
        if (!stopped)
          onError(new KvUnavailable(`jetstream: watch of bucket ${this.bucket} failed: ${describe(e)}`, { cause: e }));
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        iter.stop();
        await done;
      },
    };
  }

  async ping(): Promise<void> {
    await this.boundary.read("ping", async () => {
      this.checkConnected();
      await this.jsm.streams.info(this.stream);
    });
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.close();
  }

  /** Deletes the bucket and everything in it (tests, benchmarks). */
  async destroy(): Promise<void> {
    await this.boundary.read("destroy", () => this.kv.destroy());
  }

  /**
   * Runs `f`, failing it as soon as the connection drops. nats.js keeps a request whose connection
   * dropped waiting for its full timeout, although its reply is usually gone with the connection: a
   * write then became `WriteOutcomeUnknown` only after IDMAP_REQUEST_TIMEOUT, too late for its
   * re-read to settle it within the request. Failing at the drop settles it in time (a reply that
   * still arrives after the reconnect changes nothing: the re-read finds the write either way).
   */
  private untilDisconnect<T>(f: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const abort = (e: Error) => reject(e);
      this.inFlight.add(abort);
      f()
        .then(resolve, reject)
        .finally(() => this.inFlight.delete(abort));
    });
  }

  /**
   * After a failed call on a replicated bucket: a description when the stream cannot have a quorum
   * (the server this client is connected to answers, but no stream leader does, or fewer than a
   * majority of the replicas are current). Undefined when disconnected: that is this client's
   * server, not the cluster.
   */
  private async quorumLost(): Promise<string | undefined> {
    if (this.replicas <= 1 || !this.connected || this.nc.isClosed()) return undefined;
    const server = this.nc.info?.server_name ?? "the server";
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), QUORUM_PROBE_MS)));
    try {
      const info = await Promise.race([this.jsm.streams.info(this.stream).catch(() => undefined), gaveUp]);
      if (!info) return `connected to ${server}, but no leader of stream ${this.stream} answers`;
      const cluster = info.cluster;
      const current =
        (cluster?.leader ? 1 : 0) + (cluster?.replicas ?? []).filter((r) => r.current && !r.offline).length;
      if (cluster?.leader && current > this.replicas / 2) return undefined;
      const leader = cluster?.leader ?? "none";
      return `stream ${this.stream}: ${current} of ${this.replicas} replicas current, leader ${leader}`;
    } finally {
      clearTimeout(timer);
    }
  }

  private checkConnected(): void {
    if (this.nc.isClosed()) throw new NotConnected("connection closed");
    if (!this.connected) throw new NotConnected("disconnected from the server, reconnecting");
  }

  private async followStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect") {
        this.connected = false;
        const lost = new ConnectionLost(`connection to ${s.server} lost with the request in flight`);
        for (const abort of this.inFlight) abort(lost);
        this.inFlight.clear();
        this.log.warn({ backend: "jetstream", server: s.server }, "disconnected from NATS");
      } else if (s.type === "reconnect") {
        this.connected = true;
        this.log.info({ backend: "jetstream", server: s.server }, "reconnected to NATS");
      }
    }
  }
}

/**
 * The first nats-server whose replicated streams check Nats-Expected-Last-Subject-Sequence against
 * writes still in flight. Before it, the check ran only against stored messages, so concurrent
 * conditional updates of one key could all be accepted (nats-server issue 4320): CAS, which every
 * binding relies on, loses updates (the cluster tests measured 963 of 6 400 increments kept on 2.9.10).
 */
export const MIN_SERVER_FOR_REPLICATED_CAS = "2.9.21";

/** Refuses a replicated bucket on a server whose CAS is not safe with replicas (see above). */
export function refuseUnsafeReplicas(replicas: number, serverVersion: string | undefined): void {
  if (replicas <= 1 || versionAtLeast(serverVersion ?? "0", MIN_SERVER_FOR_REPLICATED_CAS)) return;
  throw new ConfigError(
    "IDMAP_KV_REPLICAS",
    `a JetStream KV bucket with ${replicas} replicas needs nats-server ${MIN_SERVER_FOR_REPLICATED_CAS} or later ` +
      "(older servers accept concurrent conditional updates of one key, losing updates); " +
      `this server is ${serverVersion ?? "unknown"}. ` +
      "Run one replica, upgrade the servers, or use etcd (docs/deploy.md)",
  );
}

function versionAtLeast(have: string, want: string): boolean {
  const a = have.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const b = want.split(".").map(Number);
  for (let i = 0; i < b.length; i++) if ((a[i] ?? 0) !== b[i]) return (a[i] ?? 0) > b[i]!;
  return true;
}

/** How long a failed call waits for the quorum check before answering. */
const QUORUM_PROBE_MS = 500;

class NotConnected extends Error {
  override readonly name = "NotConnected";
}

class ConnectionLost extends Error {
  override readonly name = "ConnectionLost";
}

function isNoResponders(e: unknown): boolean {
  if (e instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders())) return true;
  // nats.js reports a publish nobody answered as JetStreamNotEnabled (not exported) caused by no-responders.
  return e instanceof Error && e.cause !== e && e.cause !== undefined && isNoResponders(e.cause);
}

/** Entry or null; delete markers read as absent. */
function toEntry(key: string, e: NatsEntry | null): KvEntry | null {
  if (!e || e.operation === "DEL" || e.operation === "PURGE") return null;
  return { key, value: e.value, revision: e.revision };
}

/** Wrong-last-sequence answers are CAS conflicts; nothing else is. */
async function conflictOn<T>(key: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (
      e instanceof JetStreamApiError &&
      (e.code === JetStreamApiCodes.StreamWrongLastSequence ||
        e.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
    ) {
      throw new RevisionConflict(key, { cause: e });
    }
    throw e;
  }
}
