/**
 * The change stream's benchmark (issue 15): how soon a published change is in a follower's cache,
 * what 20 followers cost publishing, and how fast the local cache answers.
 *
 *   npm run bench:stream                         # embedded (the default backend), about 2 minutes
 *   npm run bench:stream -- embedded redis       # some backends
 *   npm run bench:stream -- --quick              # short runs (the machinery test uses it)
 *
 * Options: --rate=N (published updates/s for the latency run, default 1000), --seconds=N (its length,
 * default 10), --followers=N (default 20), --publish=N (updates per throughput round, default 5000),
 * --rounds=N (throughput rounds with and without followers, alternated; default 3), --lookup-ms=N.
 *
 * The service runs in a child process (`idmap serve`: REST, the map on), the publisher and the
 * measured follower (an IdentityCache over loopback HTTP) in this one, the 20 followers of the cost
 * run in a third. Results: a summary on stdout and JSON in bench/results/stream-<date>.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadavg } from "node:os";
import { IdentityCache } from "../src/client/identity-cache.js";
import { BACKENDS, type BackendName, serversFromEnv, serviceSetup } from "./lib/backends.js";
import { RESULTS_DIR } from "./lib/bench.js";
import { LoadSampler, machine, processCpuMs, spawnChild } from "./lib/util.js";

interface Options {
  backends: BackendName[];
  rate: number;
  seconds: number;
  followers: number;
  publish: number;
  rounds: number;
  lookupMs: number;
}

export interface StreamRow {
  readonly backend: BackendName;
  readonly latency: {
    readonly targetRate: number;
    readonly achievedRate: number;
    readonly updates: number;
    readonly p50Ms: number;
    readonly p99Ms: number;
    readonly maxMs: number;
    /** Published changes the follower never received within the wait (should be 0). */
    readonly missing: number;
  };
  readonly followersCost: {
    readonly followers: number;
    readonly withoutUpdatesPerSec: readonly number[];
    readonly withUpdatesPerSec: readonly number[];
    /** Median slow-down, percent (negative: faster with followers, i.e. noise). */
    readonly slowdownPct: number;
    /** The service process's CPU per 1000 published updates (user + system), without and with followers. */
    readonly cpuMsPer1000Without: readonly number[];
    readonly cpuMsPer1000With: readonly number[];
    /** Median extra CPU with followers, percent: less sensitive to the machine's other load than a rate. */
    readonly cpuExtraPct: number;
    readonly changesPerFollower: number;
  };
  readonly localLookups: {
    readonly bindings: number;
    readonly lookupPerSec: number;
    readonly getPerSec: number;
  };
  readonly load: { readonly min: number; readonly median: number; readonly max: number };
}

function parse(argv: readonly string[]): Options {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (const a of argv) {
    if (!a.startsWith("--")) positional.push(a);
    else {
      const eq = a.indexOf("=");
      flags.set(eq < 0 ? a.slice(2) : a.slice(2, eq), eq < 0 ? "" : a.slice(eq + 1));
    }
  }
  const known = ["quick", "rate", "seconds", "followers", "publish", "rounds", "lookup-ms"];
  for (const k of flags.keys()) if (!known.includes(k)) throw new Error(`unknown option --${k}`);
  for (const b of positional)
    if (!(BACKENDS as readonly string[]).includes(b)) throw new Error(`unknown backend ${b} (${BACKENDS.join(", ")})`);
  const quick = flags.has("quick");
  const num = (k: string, d: number) => {
    const v = flags.get(k);
    if (v === undefined) return d;
    if (!/^\d+$/.test(v) || Number(v) <= 0) throw new Error(`--${k}: a positive integer`);
    return Number(v);
  };
  return {
    backends: positional.length ? (positional as BackendName[]) : ["embedded"],
    rate: num("rate", 1000),
    seconds: num("seconds", quick ? 2 : 10),
    followers: num("followers", 20),
    publish: num("publish", quick ? 500 : 5000),
    rounds: num("rounds", quick ? 1 : 3),
    lookupMs: num("lookup-ms", quick ? 200 : 1000),
  };
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor((s.length - 1) / 2)]!;
};
const percentile = (xs: readonly number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const round1 = (x: number) => Math.round(x * 10) / 10;
const signed = (x: number) => (x > 0 ? `+${round1(x)}` : String(round1(x)));

let serial = 0;
/** The MAC of device `i`, as the map stores it. */
function mac(i: number): string {
  const hex = i.toString(16).padStart(8, "0");
  return `06:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:${hex.slice(6, 8)}`.toUpperCase();
}

/** `n` new devices, each with a MAC of its own. */
function devices(n: number): { device_id: string; mac: string; source: string }[] {
  return Array.from({ length: n }, () => {
    const i = ++serial;
    return { device_id: `bench-${i}`, mac: mac(i), source: "agent" };
  });
}

async function post(url: string, updates: readonly object[]): Promise<void> {
  const r = await fetch(`${url}/v1/device-updates`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ updates }),
  });
  if (!r.ok) throw new Error(`publish: HTTP ${r.status} ${await r.text()}`);
  await r.arrayBuffer();
}

/** Publishes at `rate` updates/s (a batch every 10 ms) and times each MAC from its ack to the follower's cache. */
async function latencyRun(url: string, opts: Options, log: (l: string) => void): Promise<StreamRow["latency"]> {
  const acked = new Map<string, number>();
  const arrived = new Map<string, number>();
  const cache = new IdentityCache({
    urls: [url],
    onChange: (c) => {
      if (c.key.kind === "mac" && c.operation === "put" && !arrived.has(c.key.value))
        arrived.set(c.key.value, performance.now());
    },
  });
  await cache.start();
  const perTick = Math.max(1, Math.round(opts.rate / 100));
  const ticks = opts.seconds * 100;
  const start = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let t = 0; t < ticks; t++) {
    const due = start + t * 10;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const batch = devices(perTick);
    inFlight.push(
      post(url, batch).then(() => {
        const now = performance.now();
        for (const d of batch) acked.set(d.mac, now);
      }),
    );
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - start) / 1000;
  const deadline = performance.now() + 10_000;
  while (arrived.size < acked.size && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await cache.close();
  const latencies: number[] = [];
  let missing = 0;
  for (const [mac, at] of acked) {
    const got = arrived.get(mac);
    if (got === undefined) missing++;
    // A change can reach the follower before the publisher has read its own reply: that is 0 ms late.
    else latencies.push(Math.max(0, got - at));
  }
  const row = {
    targetRate: opts.rate,
    achievedRate: Math.round(acked.size / elapsed),
    updates: acked.size,
    p50Ms: round1(percentile(latencies, 50)),
    p99Ms: round1(percentile(latencies, 99)),
    maxMs: round1(Math.max(0, ...latencies)),
    missing,
  };
  log(
    `  latency: ${row.updates} updates at ${row.achievedRate}/s: p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, ` +
      `max ${row.maxMs} ms, missing ${missing}`,
  );
  return row;
}

/**
 * Publishes `n` new devices as fast as the service takes them (batches of 100, 4 in flight): updates/s,
 * and the service's CPU milliseconds per 1000 updates (its process, from /proc).
 */
async function publishRound(url: string, n: number, pid: number): Promise<{ rate: number; cpuPer1000: number }> {
  const all = devices(n);
  const cpu0 = processCpuMs(pid);
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < all.length) {
        const batch = all.slice(next, next + 100);
        next += 100;
        await post(url, batch);
      }
    }),
  );
  const rate = Math.round(n / ((performance.now() - start) / 1000));
  return { rate, cpuPer1000: Math.round(((processCpuMs(pid) - cpu0) / n) * 1000) };
}

async function costRun(
  url: string,
  pid: number,
  opts: Options,
  log: (l: string) => void,
): Promise<StreamRow["followersCost"]> {
  const without: number[] = [];
  const withF: number[] = [];
  const cpuWithout: number[] = [];
  const cpuWith: number[] = [];
  let changes = 0;
  await publishRound(url, Math.min(1000, opts.publish), pid); // warm-up
  for (let r = 0; r < opts.rounds; r++) {
    const a = await publishRound(url, opts.publish, pid);
    without.push(a.rate);
    cpuWithout.push(a.cpuPer1000);
    const followers = spawnChild("followers.ts");
    await followers.next("ready");
    followers.send({ type: "start", url, count: opts.followers });
    await followers.next("connected");
    const b = await publishRound(url, opts.publish, pid);
    withF.push(b.rate);
    cpuWith.push(b.cpuPer1000);
    await new Promise((res) => setTimeout(res, 500));
    followers.send({ type: "stop" });
    const { received } = await followers.next<{ received: number[] }>("stopped");
    changes = median(received);
    await followers.stop(2_000);
    log(
      `  round ${r + 1}: ${a.rate}/s (${a.cpuPer1000} ms CPU per 1000) without followers, ` +
        `${b.rate}/s (${b.cpuPer1000} ms) with ${opts.followers}`,
    );
  }
  const slowdownPct = round1((1 - median(withF) / median(without)) * 100);
  const cpuExtraPct = round1((median(cpuWith) / median(cpuWithout) - 1) * 100);
  log(
    `  ${opts.followers} followers: ${slowdownPct}% slower publishing, ${cpuExtraPct}% more service CPU ` +
      `per update (medians); ${changes} changes each`,
  );
  return {
    followers: opts.followers,
    withoutUpdatesPerSec: without,
    withUpdatesPerSec: withF,
    slowdownPct,
    cpuMsPer1000Without: cpuWithout,
    cpuMsPer1000With: cpuWith,
    cpuExtraPct,
    changesPerFollower: changes,
  };
}

async function lookupRun(
  url: string,
  opts: Options,
  log: (l: string) => void,
  firstDevice: number,
): Promise<StreamRow["localLookups"]> {
  const cache = new IdentityCache({ urls: [url] });
  await cache.start();
  const macs: string[] = [];
  // This backend's devices only (the counter runs on across backends), as clients would ask: normalized.
  const step = Math.max(1, Math.floor((serial - firstDevice) / 10_000));
  for (let i = firstDevice + 1; i <= serial; i += step) macs.push(mac(i));
  const requests = macs.map((m) => ({ identity_keys: [{ kind: "mac" as const, value: m }] }));
  const measure = (f: (i: number) => unknown): number => {
    let n = 0;
    const end = performance.now() + opts.lookupMs;
    while (performance.now() < end) for (let k = 0; k < 1000; k++) f(n++);
    return Math.round(n / (opts.lookupMs / 1000));
  };
  let found = 0;
  measure((i) => {
    if (cache.lookupLocal(requests[i % requests.length]!).found) found++;
  }); // warm-up
  if (found === 0) throw new Error("the cache found none of the published MACs");
  const lookupPerSec = measure((i) => cache.lookupLocal(requests[i % requests.length]!));
  const getPerSec = measure((i) => cache.get("mac", macs[i % macs.length]!));
  const bindings = cache.size;
  await cache.close();
  log(`  local lookups over ${bindings} bindings: lookup() ${lookupPerSec}/s, get() ${getPerSec}/s`);
  return { bindings, lookupPerSec, getPerSec };
}

export async function runStreamBench(opts: Options, log: (l: string) => void): Promise<StreamRow[]> {
  const rows: StreamRow[] = [];
  for (const backend of opts.backends) {
    log(`${backend}:`);
    const setup = serviceSetup(backend, serversFromEnv(), `stream_${Date.now().toString(36)}`, "warn");
    const service = spawnChild("service.ts", { env: { ...setup.env, IDMAP_FRONTENDS: "rest" } });
    const sampler = new LoadSampler(2_000);
    try {
      const { restPort } = await service.next<{ restPort: number }>("ready");
      const url = `http://127.0.0.1:${restPort}`;
      const firstDevice = serial;
      const latency = await latencyRun(url, opts, log);
      const followersCost = await costRun(url, service.proc.pid ?? 0, opts, log);
      const localLookups = await lookupRun(url, opts, log, firstDevice);
      rows.push({ backend, latency, followersCost, localLookups, load: sampler.stop() });
    } finally {
      sampler.stop();
      await service.stop();
      await setup.cleanup();
    }
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const opts = parse(process.argv.slice(2));
  const started = new Date();
  console.log(`stream bench: ${opts.backends.join(", ")}; load ${loadavg()[0]!.toFixed(2)} at start`);
  const rows = await runStreamBench(opts, (l) => console.log(l));
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `stream-${started.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify({ version: 1, started, machine: machine(), options: opts, rows }, null, 2)}\n`);
  console.log("\nbackend    p99 follower   rate/s  followers: rate  CPU/update  local lookups/s  load (median)");
  for (const r of rows)
    console.log(
      `${r.backend.padEnd(10)} ${`${r.latency.p99Ms} ms`.padEnd(14)} ${String(r.latency.achievedRate).padEnd(7)} ` +
        `${`${signed(-r.followersCost.slowdownPct)}%`.padEnd(16)} ${`${signed(r.followersCost.cpuExtraPct)}%`.padEnd(11)} ` +
        `${String(r.localLookups.lookupPerSec).padEnd(16)} ${r.load.median.toFixed(2)}`,
    );
  console.log(`\nresults: ${file}`);
}
