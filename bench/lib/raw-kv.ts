/**
 * The publish ceiling: each backend's own client doing the KV operations a published update cost the
 * service (batch reads, create-if-absent, update and delete at a revision), with no service around
 * it. Kept as plain as each client allows; where the service's adapter batches (SQLite group commit,
 * an etcd read transaction, a Redis pipeline) the raw client does the same, so the ratio measures the
 * service, not a missing trick.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import Database from "better-sqlite3";
import { Etcd3, type IOptions } from "etcd3";
import { Redis } from "ioredis";
import type { BackendName, Servers } from "./backends.js";

export interface RawKv {
  readonly label: string;
  getMany(keys: readonly string[]): Promise<void>;
  /** Each write returns the key's new revision and throws on a conflict. */
  create(key: string, value: Uint8Array): Promise<number>;
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  delete(key: string, revision: number): Promise<void>;
  close(): Promise<void>;
}

const conflict = (key: string) => new Error(`raw CAS conflict on ${key}`);

function rawMemory(): RawKv {
  const m = new Map<string, { value: Uint8Array; revision: number }>();
  let rev = 0;
  return {
    label: "JS Map",
    getMany: async (keys) => void keys.map((k) => m.get(k)),
    create: async (k, value) => {
      if (m.has(k)) throw conflict(k);
      m.set(k, { value, revision: ++rev });
      return rev;
    },
    update: async (k, value, revision) => {
      if (m.get(k)?.revision !== revision) throw conflict(k);
      m.set(k, { value, revision: ++rev });
      return rev;
    },
    delete: async (k, revision) => {
      if (m.get(k)?.revision !== revision) throw conflict(k);
      m.delete(k);
    },
    close: async () => {},
  };
}

/** better-sqlite3 with the embedded backend's settings (WAL, synchronous FULL) and the same group commit: one transaction per event-loop turn. */
function rawSqlite(): RawKv {
  const dir = mkdtempSync(join(tmpdir(), "idmap-bench-raw-"));
  const db = new Database(join(dir, "raw.sqlite"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("create table kv (key text primary key, value blob not null, revision integer not null)");
  const get = db.prepare<[string], { value: Buffer; revision: number }>("select value, revision from kv where key = ?");
  const revOf = db.prepare<[string], { revision: number }>("select revision from kv where key = ?");
  const ins = db.prepare("insert into kv (key, value, revision) values (?, ?, ?)");
  const upd = db.prepare("update kv set value = ?, revision = ? where key = ?");
  const del = db.prepare("delete from kv where key = ?");
  let rev = 0;
  type W = {
    key: string;
    value: Buffer | null;
    expected: number | undefined;
    resolve(r: number): void;
    reject(e: Error): void;
  };
  let queue: W[] = [];
  const flush = () => {
    const batch = queue;
    queue = [];
    const out: (number | Error)[] = [];
    db.transaction(() => {
      for (const w of batch) {
        const cur = revOf.get(w.key)?.revision;
        if (w.expected === undefined ? cur !== undefined : cur !== w.expected) {
          out.push(conflict(w.key));
          continue;
        }
        const r = ++rev;
        if (w.value === null) del.run(w.key);
        else if (cur === undefined) ins.run(w.key, w.value, r);
        else upd.run(w.value, r, w.key);
        out.push(r);
      }
    })();
    batch.forEach((w, i) => {
      const o = out[i]!;
      if (o instanceof Error) w.reject(o);
      else w.resolve(o);
    });
  };
  const enqueue = (key: string, value: Buffer | null, expected: number | undefined) =>
    new Promise<number>((resolve, reject) => {
      if (queue.push({ key, value, expected, resolve, reject }) === 1) setImmediate(flush);
    });
  return {
    label: "better-sqlite3, group commit",
    getMany: async (keys) => void keys.map((k) => get.get(k)),
    create: (k, v) => enqueue(k, Buffer.from(v), undefined),
    update: (k, v, r) => enqueue(k, Buffer.from(v), r),
    delete: async (k, r) => void (await enqueue(k, null, r)),
    close: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function rawNats(url: string, bucket: string): Promise<RawKv> {
  const nc = await connect({ servers: url });
  const kv = await new Kvm(jetstream(nc)).create(bucket);
  return {
    label: "nats.js KV",
    getMany: async (keys) => void (await Promise.all(keys.map((k) => kv.get(k)))),
    create: (k, v) => kv.create(k, v),
    update: (k, v, r) => kv.update(k, v, r),
    delete: (k, r) => kv.delete(k, { previousSeq: r }),
    close: async () => {
      await kv.destroy();
      await nc.close();
    },
  };
}

/** As in the adapter (etcd-kv.ts): each call runs once; etcd3's default retries re-send writes whose reply was lost. */
const runOnce = {
  execute: (fn: (context: { signal: AbortSignal }) => unknown) =>
    Promise.resolve().then(() => fn({ signal: new AbortController().signal })),
};

async function rawEtcd(endpoints: readonly string[], prefix: string): Promise<RawKv> {
  type Faults = NonNullable<IOptions["faultHandling"]>;
  const client = new Etcd3({
    hosts: [...endpoints],
    faultHandling: {
      global: runOnce as unknown as Faults["global"],
      host: () => runOnce as unknown as ReturnType<NonNullable<Faults["host"]>>,
    },
  });
  const k = (key: string) => Buffer.from(`${prefix}${key}`);
  const cas = async (
    key: string,
    compare: { target: "Create"; create_revision: 0 } | { target: "Mod"; mod_revision: number },
    op: object,
  ) => {
    const r = await client.kv.txn({ compare: [{ key: k(key), result: "Equal", ...compare }], success: [op] });
    if (!r.succeeded) throw conflict(key);
    return Number(r.header.revision);
  };
  return {
    label: "etcd3",
    getMany: async (keys) =>
      void (await client.kv.txn({ success: keys.map((key) => ({ request_range: { key: k(key) } })) })),
    create: (key, v) =>
      cas(key, { target: "Create", create_revision: 0 }, { request_put: { key: k(key), value: Buffer.from(v) } }),
    update: (key, v, r) =>
      cas(key, { target: "Mod", mod_revision: r }, { request_put: { key: k(key), value: Buffer.from(v) } }),
    delete: async (key, r) =>
      void (await cas(key, { target: "Mod", mod_revision: r }, { request_delete_range: { key: k(key) } })),
    close: async () => {
      await client.delete().prefix(prefix);
      client.close();
    },
  };
}

/** A hash {v, r} per key and the smallest scripts: compare r, then write (no store counter, no change stream). */
async function rawRedis(url: string, prefix: string): Promise<RawKv> {
  type Scripted = Redis & {
    rawCreate(key: string, value: Buffer): Promise<number>;
    rawUpdate(key: string, value: Buffer, expected: number): Promise<number>;
    rawDelete(key: string, expected: number): Promise<number>;
  };
  const redis = new Redis(url) as Scripted;
  redis.defineCommand("rawCreate", {
    numberOfKeys: 1,
    lua: `if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end redis.call('HSET', KEYS[1], 'v', ARGV[1], 'r', 1) return 1`,
  });
  redis.defineCommand("rawUpdate", {
    numberOfKeys: 1,
    lua: `if redis.call('HGET', KEYS[1], 'r') ~= ARGV[2] then return 0 end local r = redis.call('HINCRBY', KEYS[1], 'r', 1) redis.call('HSET', KEYS[1], 'v', ARGV[1]) return r`,
  });
  redis.defineCommand("rawDelete", {
    numberOfKeys: 1,
    lua: `if redis.call('HGET', KEYS[1], 'r') ~= ARGV[1] then return 0 end return redis.call('DEL', KEYS[1])`,
  });
  const k = (key: string) => `${prefix}${key}`;
  const ok = (key: string, r: number) => {
    if (r === 0) throw conflict(key);
    return r;
  };
  return {
    label: "ioredis + Lua",
    getMany: async (keys) => {
      const p = redis.pipeline();
      for (const key of keys) p.hmgetBuffer(k(key), "v", "r");
      await p.exec();
    },
    create: async (key, v) => ok(key, await redis.rawCreate(k(key), Buffer.from(v))),
    update: async (key, v, r) => ok(key, await redis.rawUpdate(k(key), Buffer.from(v), r)),
    delete: async (key, r) => void ok(key, await redis.rawDelete(k(key), r)),
    close: async () => {
      for (let cursor = "0"; ; ) {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
        if (keys.length) await redis.del(...keys);
        if (next === "0") break;
        cursor = next;
      }
      await redis.quit();
    },
  };
}

export async function openRawKv(backend: BackendName, servers: Servers, name: string): Promise<RawKv> {
  switch (backend) {
    case "memory":
      return rawMemory();
    case "embedded":
      return rawSqlite();
    case "jetstream":
      return rawNats(servers.natsUrl, `${name}_raw`);
    case "etcd":
      return rawEtcd(servers.etcdEndpoints, `${name}/raw/`);
    case "redis":
      return rawRedis(servers.redisUrl, `${name}:raw:`);
  }
}
