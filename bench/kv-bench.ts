/**
 * KV benchmark: get and CAS (read, then update at the revision read) operations per second, with 1
 * and 64 calls in flight, through each IdentityKv adapter and through the raw client doing the same
 * operations in the same run. The ratio adapter/raw shows what the adapter costs.
 *
 *   npm run bench:kv                      # every backend
 *   npm run bench:kv -- redis etcd        # some of them
 *   npm run bench:kv -- --duration=3000   # milliseconds per measurement and side (default 1500)
 *
 * Each in-flight worker uses a key of its own, so CAS measures throughput, not contention. Servers
 * are the ones scripts/start-servers.sh starts; a backend that does not answer is reported and skipped.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import Database from "better-sqlite3";
import { Etcd3 } from "etcd3";
import { Redis } from "ioredis";
import { openEmbeddedKv } from "../src/adapters/kv/embedded-kv.js";
import { EtcdKv } from "../src/adapters/kv/etcd-kv.js";
import { JetStreamKv } from "../src/adapters/kv/jetstream-kv.js";
import { MemoryKv } from "../src/adapters/kv/memory-kv.js";
import { RedisKv } from "../src/adapters/kv/redis-kv.js";
import { RevisionConflict } from "../src/domain/errors.js";
import type { IdentityKv } from "../src/ports/identity-kv.js";

const BACKENDS = ["memory", "embedded", "jetstream", "etcd", "redis"] as const;
type Backend = (typeof BACKENDS)[number];
const IN_FLIGHT = [1, 64] as const;
const OPS = ["get", "cas"] as const;
type Op = (typeof OPS)[number];

const SERVERS = { nats: "nats://127.0.0.1:4222", etcd: "http://127.0.0.1:2379", redis: "redis://127.0.0.1:6379" };
const enc = (s: string) => new TextEncoder().encode(s);
const VALUE = enc("x".repeat(200)); // about the size of an encoded canonical record

/** One way of doing the two operations on keys 0..63. `cas` returns false on a conflict. */
interface Target {
  get(worker: number): Promise<void>;
  cas(worker: number): Promise<boolean>;
  close(): Promise<void>;
}

interface Pair {
  adapter: Target;
  raw: Target;
  rawLabel: string;
}

// --- adapters --------------------------------------------------------------------------------------

async function adapterTarget(kv: IdentityKv, close: () => Promise<void>): Promise<Target> {
  const key = (w: number) => `bench/k${w}`;
  for (let w = 0; w < 64; w++) await kv.create(key(w), VALUE);
  return {
    get: async (w) => void (await kv.get(key(w))),
    cas: async (w) => {
      const e = await kv.get(key(w));
      try {
        await kv.update(key(w), VALUE, e!.revision);
        return true;
      } catch (err) {
        if (err instanceof RevisionConflict) return false;
        throw err;
      }
    },
    close,
  };
}

// --- raw clients -------------------------------------------------------------------------------------

/** A Map with a revision per key: the floor for the in-process adapter. */
function rawMemory(): Target {
  const m = new Map<string, { value: Uint8Array; revision: number }>();
  let rev = 0;
  for (let w = 0; w < 64; w++) m.set(`k${w}`, { value: VALUE, revision: ++rev });
  return {
    get: async (w) => void m.get(`k${w}`),
    cas: async (w) => {
      const e = m.get(`k${w}`)!;
      if (m.get(`k${w}`)!.revision !== e.revision) return false;
      m.set(`k${w}`, { value: VALUE, revision: ++rev });
      return true;
    },
    close: async () => {},
  };
}

/** better-sqlite3 with the embedded backend's settings (WAL, synchronous FULL), one conditional UPDATE per CAS. */
function rawSqlite(dir: string): Target {
  const db = new Database(join(dir, "raw.sqlite"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("create table kv (key text primary key, value blob not null, revision integer not null)");
  const ins = db.prepare("insert into kv (key, value, revision) values (?, ?, ?)");
  for (let w = 0; w < 64; w++) ins.run(`k${w}`, Buffer.from(VALUE), w + 1);
  let rev = 64;
  const get = db.prepare("select value, revision from kv where key = ?");
  const upd = db.prepare("update kv set value = ?, revision = ? where key = ? and revision = ?");
  return {
    get: async (w) => void get.get(`k${w}`),
    cas: async (w) => {
      const e = get.get(`k${w}`) as { revision: number };
      return upd.run(Buffer.from(VALUE), ++rev, `k${w}`, e.revision).changes === 1;
    },
    close: async () => void db.close(),
  };
}

async function rawNats(bucket: string): Promise<Target> {
  const nc = await connect({ servers: SERVERS.nats });
  const kv = await new Kvm(jetstream(nc)).create(bucket);
  for (let w = 0; w < 64; w++) await kv.put(`k${w}`, VALUE);
  return {
    get: async (w) => void (await kv.get(`k${w}`)),
    cas: async (w) => {
      const e = await kv.get(`k${w}`);
      try {
        await kv.update(`k${w}`, VALUE, e!.revision);
        return true;
      } catch {
        return false;
      }
    },
    close: async () => {
      await kv.destroy();
      await nc.close();
    },
  };
}

async function rawEtcd(prefix: string): Promise<Target> {
  const client = new Etcd3({ hosts: SERVERS.etcd });
  const key = (w: number) => `${prefix}k${w}`;
  for (let w = 0; w < 64; w++) await client.put(key(w)).value(Buffer.from(VALUE));
  return {
    get: async (w) => void (await client.get(key(w)).exec()),
    cas: async (w) => {
      const r = await client.get(key(w)).exec();
      const t = await client
        .if(key(w), "Mod", "==", r.kvs[0]!.mod_revision)
        .then(client.put(key(w)).value(Buffer.from(VALUE)))
        .commit();
      return t.succeeded;
    },
    close: async () => {
      await client.delete().prefix(prefix);
      client.close();
    },
  };
}

/** A hash {v, r} and the smallest CAS script: compare r, bump it, set v. */
async function rawRedis(prefix: string): Promise<Target> {
  const redis = new Redis(SERVERS.redis) as Redis & {
    cas(key: string, value: Buffer, expected: string): Promise<number>;
  };
  redis.defineCommand("cas", {
    numberOfKeys: 1,
    lua: `if redis.call('HGET', KEYS[1], 'r') ~= ARGV[2] then return 0 end
          local r = redis.call('HINCRBY', KEYS[1], 'r', 1)
          redis.call('HSET', KEYS[1], 'v', ARGV[1])
          return r`,
  });
  const key = (w: number) => `${prefix}k${w}`;
  for (let w = 0; w < 64; w++) await redis.hset(key(w), "v", Buffer.from(VALUE), "r", 1);
  return {
    get: async (w) => void (await redis.hmgetBuffer(key(w), "v", "r")),
    cas: async (w) => {
      const [, r] = await redis.hmget(key(w), "v", "r");
      return (await redis.cas(key(w), Buffer.from(VALUE), r!)) !== 0;
    },
    close: async () => {
      await redis.del(...Array.from({ length: 64 }, (_, w) => key(w)));
      await redis.quit();
    },
  };
}

// --- per backend -------------------------------------------------------------------------------------

async function open(backend: Backend, run: string): Promise<Pair> {
  switch (backend) {
    case "memory": {
      const kv = new MemoryKv();
      return { adapter: await adapterTarget(kv, () => kv.close()), raw: rawMemory(), rawLabel: "JS Map" };
    }
    case "embedded": {
      const dir = mkdtempSync(join(tmpdir(), "idmap-bench-"));
      const { kv, db } = await openEmbeddedKv(dir);
      const raw = rawSqlite(dir);
      const adapter = await adapterTarget(kv, async () => {
        await kv.close();
        await db.destroy();
        rmSync(dir, { recursive: true, force: true });
      });
      return { adapter, raw, rawLabel: "better-sqlite3" };
    }
    case "jetstream": {
      const kv = await JetStreamKv.open({ servers: SERVERS.nats, bucket: `${run}_adapter` });
      const adapter = await adapterTarget(kv, async () => {
        await kv.destroy();
        await kv.close();
      });
      return { adapter, raw: await rawNats(`${run}_raw`), rawLabel: "nats.js KV" };
    }
    case "etcd": {
      const kv = await EtcdKv.open({ endpoints: [SERVERS.etcd], keyPrefix: `${run}/adapter/` });
      const adapter = await adapterTarget(kv, async () => {
        await kv.destroy();
        await kv.close();
      });
      return { adapter, raw: await rawEtcd(`${run}/raw/`), rawLabel: "etcd3" };
    }
    case "redis": {
      const kv = await RedisKv.open({ url: SERVERS.redis, keyPrefix: `${run}:adapter:` });
      const adapter = await adapterTarget(kv, async () => {
        await kv.destroy();
        await kv.close();
      });
      return { adapter, raw: await rawRedis(`${run}:raw:`), rawLabel: "ioredis + Lua" };
    }
  }
}

interface Result {
  backend: Backend;
  op: Op;
  inFlight: number;
  adapter: number;
  raw: number;
  rawLabel: string;
  conflicts: number;
}

interface Rate {
  rate: number;
  conflicts: number;
}

function median(xs: Rate[]): Rate {
  const sorted = [...xs].sort((a, b) => a.rate - b.rate);
  return { rate: sorted[Math.floor(sorted.length / 2)]!.rate, conflicts: xs.reduce((s, x) => s + x.conflicts, 0) };
}

/** Runs `op` with `inFlight` workers for `ms` (after a short warm-up); returns operations per second. */
async function measure(t: Target, op: Op, inFlight: number, ms: number): Promise<Rate> {
  let conflicts = 0;
  const runFor = async (duration: number) => {
    const end = performance.now() + duration;
    let ops = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async (_, w) => {
        while (performance.now() < end) {
          if (op === "get") await t.get(w);
          else if (!(await t.cas(w))) conflicts++;
          ops++;
        }
      }),
    );
    return ops;
  };
  await runFor(Math.min(200, ms / 5));
  conflicts = 0;
  const start = performance.now();
  const ops = await runFor(ms);
  return { rate: ops / ((performance.now() - start) / 1000), conflicts };
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const duration = Number(args.find((a) => a.startsWith("--duration="))?.split("=")[1] ?? 1500);
  const picked = args.filter((a) => !a.startsWith("--"));
  for (const p of picked)
    if (!(BACKENDS as readonly string[]).includes(p))
      throw new Error(`unknown backend ${p} (expected ${BACKENDS.join(", ")})`);
  const backends = picked.length > 0 ? (picked as Backend[]) : [...BACKENDS];
  const run = `idmap_bench_${randomUUID().slice(0, 8)}`;
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "unknown CPU"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  console.log(`KV benchmark, ${new Date().toISOString().slice(0, 10)}, ${machine}`);
  console.log(`${duration} ms per measurement; ${backends.join(", ")}\n`);

  const results: Result[] = [];
  const skipped: string[] = [];
  for (const backend of backends) {
    const started = performance.now();
    let pair: Pair;
    try {
      pair = await open(backend, run);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      console.log(`[${backend}] unavailable, skipped: ${why}`);
      skipped.push(`${backend} (${why})`);
      continue;
    }
    try {
      for (const op of OPS) {
        for (const inFlight of IN_FLIGHT) {
          // Adapter and raw client take turns, three rounds each, and each keeps its median round: on a
          // small shared machine this cancels most of the drift between two back-to-back measurements.
          const rounds: { a: Rate; r: Rate }[] = [];
          for (let i = 0; i < 3; i++)
            rounds.push({
              a: await measure(pair.adapter, op, inFlight, duration / 3),
              r: await measure(pair.raw, op, inFlight, duration / 3),
            });
          const a = median(rounds.map((x) => x.a));
          const r = median(rounds.map((x) => x.r));
          results.push({
            backend,
            op,
            inFlight,
            adapter: a.rate,
            raw: r.rate,
            rawLabel: pair.rawLabel,
            conflicts: a.conflicts + r.conflicts,
          });
          console.log(
            `[${backend}] ${op.padEnd(3)} x${String(inFlight).padEnd(2)}  adapter ${fmt(a.rate).padStart(9)}/s  ${pair.rawLabel} ${fmt(r.rate).padStart(9)}/s  ratio ${(a.rate / r.rate).toFixed(2)}`,
          );
        }
      }
    } finally {
      await pair.adapter.close();
      await pair.raw.close();
    }
    console.log(`[${backend}] done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  }

  console.log(`| backend | op | in flight | adapter ops/s | raw ops/s (client) | adapter/raw |`);
  console.log(`|---|---|---:|---:|---:|---:|`);
  for (const r of results) {
    console.log(
      `| ${r.backend} | ${r.op} | ${r.inFlight} | ${fmt(r.adapter)} | ${fmt(r.raw)} (${r.rawLabel}) | ${(r.adapter / r.raw).toFixed(2)} |`,
    );
  }
  const conflicted = results.filter((r) => r.conflicts > 0);
  if (conflicted.length > 0)
    console.log(
      `\nunexpected CAS conflicts: ${conflicted.map((r) => `${r.backend} ${r.op} x${r.inFlight}: ${r.conflicts}`).join("; ")}`,
    );
  if (skipped.length > 0) console.log(`\nskipped: ${skipped.join("; ")}`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
