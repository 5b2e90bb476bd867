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
 * --rounds=N (throughput rounds with and without followers, alternated; default 3), --lookup-ms=N,
 * --in-flight=N (publish requests the latency run keeps open at most, default 16), --latency-only
 * (the latency run alone), --cpu-prof=DIR (the service's CPU profile), --sync=normal (the service's
 * SQLite files without a sync per commit: IDMAP_EMBEDDED_SYNC), --no-trace (no service
 * instrumentation: the latency is not split into stages), --uncork (an experiment: the service sends
 * every response write at once, not only the change stream's, which does so itself).
 *
 * The service runs in a child process (`idmap serve`: REST, the map on), the publisher in this one,
 * the measured follower (an IdentityCache over loopback HTTP) in a second child, the 20 followers of
 * the cost run in a third. Results: a summary on stdout and JSON in bench/results/stream-<date>.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadavg } from "node:os";
import { IdentityCache } from "../src/client/identity-cache.js";
import { BACKENDS, type BackendName, serversFromEnv, serviceSetup } from "./lib/backends.js";
import { RESULTS_DIR } from "./lib/bench.js";
import { type Child, LoadSampler, machine, processCpuMs, spawnChild } from "./lib/util.js";

interface Options {
  backends: BackendName[];
  rate: number;
  seconds: number;
  followers: number;
  publish: number;
  rounds: number;
  lookupMs: number;
  /** Instrument the service (IDMAP_BENCH_TRACE) and split the latency into stages. */
  trace: boolean;
  /** Publish requests the latency run keeps open at most (it waits for one to finish beyond). */
  inFlight: number;
  /** Skip the followers' cost and local lookup runs (latency only). */
  latencyOnly: boolean;
  /** A directory for the service process's CPU profile (node --cpu-prof), when given. */
  cpuProf?: string;
  /** Experiment: the service sends each response write at once (IDMAP_BENCH_UNCORK, children/service.ts). */
  uncork: boolean;
  /** IDMAP_EMBEDDED_SYNC for the service's SQLite files (default: the service's own, full). */
  sync?: "full" | "normal";
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
    /** The publisher's request times (send → 200 read), and the most requests it had open at once. */
    readonly request: Stage;
    readonly maxRequestsInFlight: number;
    /** The service process's CPU during the run, in cores. */
    readonly serviceCpuShare: number;
    /** Where the time went (see latencyRun); the service's stages only with the trace on. */
    readonly stages: Partial<Record<"ackToWatch" | "coalesce" | "write" | "wire" | "client" | "parse", Stage>>;
    readonly serviceLoopDelay?: { p99Ms: number; maxMs: number; meanMs: number } | undefined;
    readonly followerLoopDelay: { p99Ms: number; maxMs: number; meanMs: number };
    readonly load: number;
  };
  /** Absent with --latency-only. */
  readonly followersCost?: {
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
  readonly localLookups?: {
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
  const known = [
    "quick",
    "rate",
    "seconds",
    "followers",
    "publish",
    "rounds",
    "lookup-ms",
    "no-trace",
    "latency-only",
    "cpu-prof",
    "sync",
    "in-flight",
    "uncork",
  ];
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
    inFlight: num("in-flight", 16),
    trace: !flags.has("no-trace"),
    latencyOnly: flags.has("latency-only"),
    uncork: flags.has("uncork"),
    ...(flags.get("cpu-prof") ? { cpuProf: flags.get("cpu-prof") } : {}),
    ...(flags.has("sync") ? { sync: syncMode(flags.get("sync")!) } : {}),
  };
}

function syncMode(v: string): "full" | "normal" {
  if (v !== "full" && v !== "normal") throw new Error("--sync: full or normal");
  return v;
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

/** One stage of the latency run: percentiles of the milliseconds between two stamps, over the MACs that have both. */
export interface Stage {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

const stage = (xs: readonly number[]): Stage => ({
  p50Ms: round1(percentile(xs, 50)),
  p99Ms: round1(percentile(xs, 99)),
  maxMs: round1(xs.length ? Math.max(...xs) : 0),
});

/** Wall time with sub-millisecond resolution, comparable across this machine's processes. */
const wall = () => performance.timeOrigin + performance.now();

interface ServiceTrace {
  revisions: [number, [number, number, number]][];
  loopDelay: { p99Ms: number; maxMs: number; meanMs: number };
}
interface FollowerTrace {
  applied: [string, number, number, number][];
  raw: [number, number][];
  loopDelay: { p99Ms: number; maxMs: number; meanMs: number };
}

/**
 * Publishes at `rate` updates/s (a batch every 10 ms, at most `inFlight` requests open) and times
 * each MAC from its ack to the follower's cache; the follower runs in a process of its own (children/follower.ts). With the
 * service's trace, the time is split into stages (each MAC's stamps, in ms):
 *   ackToWatch  publisher read its 200 → the service's change hub got the change from the KV watch
 *               (negative: the watch delivered before the reply reached the publisher)
 *   coalesce    hub got it → hub's flush began (the coalescing timer)
 *   write       flush began → ended (encoding and the SSE socket writes, every follower)
 *   wire        flush ended → a raw SSE reader in the follower's process saw its bytes
 *   client      raw bytes seen → the IdentityCache applied it (fetch's stream, SSE parse, JSON, apply)
 *   parse       the cache's parser pulled the chunk → applied
 */
async function latencyRun(
  url: string,
  service: Child,
  opts: Options,
  log: (l: string) => void,
): Promise<StreamRow["latency"]> {
  const acked = new Map<string, number>();
  const sent = new Map<string, number>();
  const follower = spawnChild("follower.ts");
  try {
    await follower.next("ready");
    follower.send({ type: "start", url });
    await follower.next("started");
    if (opts.trace) {
      service.send({ type: "trace" }); // starts the service's trace afresh
      await service.next("trace");
    }
    const cpu0 = processCpuMs(service.proc.pid ?? 0);
    const perTick = Math.max(1, Math.round(opts.rate / 100));
    const ticks = opts.seconds * 100;
    const start = performance.now();
    const inFlight: Promise<void>[] = [];
    let maxInFlight = 0;
    let open = 0;
    const slotFreed: (() => void)[] = [];
    for (let t = 0; t < ticks; t++) {
      const due = start + t * 10;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // A service that cannot keep up is not flooded: at most opts.inFlight requests wait at once
      // (an unbounded backlog made every request, and so the whole service, seconds late).
      while (open >= opts.inFlight) await new Promise<void>((r) => slotFreed.push(r));
      const batch = devices(perTick);
      const at = wall();
      for (const d of batch) sent.set(d.mac, at);
      maxInFlight = Math.max(maxInFlight, ++open);
      inFlight.push(
        post(url, batch).then(() => {
          open--;
          slotFreed.shift()?.();
          const now = wall();
          for (const d of batch) acked.set(d.mac, now);
        }),
      );
    }
    await Promise.all(inFlight);
    const elapsed = (performance.now() - start) / 1000;
    const serviceCpu = (processCpuMs(service.proc.pid ?? 0) - cpu0) / (elapsed * 1000);
    const deadline = performance.now() + 10_000;
    for (;;) {
      follower.send({ type: "count" });
      const { applied } = await follower.next<{ applied: number }>("count");
      if (applied >= acked.size || performance.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    follower.send({ type: "finish" });
    const f = await follower.next<FollowerTrace>("finished");
    let s: ServiceTrace | undefined;
    if (opts.trace) {
      service.send({ type: "trace" });
      s = await service.next<ServiceTrace>("trace");
    }
    const arrived = new Map<string, { revision: number; at: number; pulled: number }>();
    for (const [m, revision, at, pulled] of f.applied) if (!arrived.has(m)) arrived.set(m, { revision, at, pulled });
    const rawAt = new Map<number, number>();
    for (const [r, at] of f.raw) if (!rawAt.has(r)) rawAt.set(r, at);
    const hub = new Map(s?.revisions ?? []);
    const latencies: number[] = [];
    const request: number[] = [];
    const split = {
      ackToWatch: [] as number[],
      coalesce: [] as number[],
      write: [] as number[],
      wire: [] as number[],
      client: [] as number[],
      parse: [] as number[],
    };
    let missing = 0;
    for (const [m, at] of acked) {
      request.push(at - sent.get(m)!);
      const got = arrived.get(m);
      if (got === undefined) {
        missing++;
        continue;
      }
      // A change can reach the follower before the publisher has read its own reply: that is 0 ms late.
      latencies.push(Math.max(0, got.at - at));
      if (got.pulled > 0) split.parse.push(got.at - got.pulled);
      const h = hub.get(got.revision);
      const r = rawAt.get(got.revision);
      if (r !== undefined) split.client.push(got.at - r);
      if (!h) continue;
      split.ackToWatch.push(h[0] - at);
      split.coalesce.push(h[1] - h[0]);
      split.write.push(h[2] - h[1]);
      if (r !== undefined) split.wire.push(r - h[2]);
    }
    const stages = Object.fromEntries(Object.entries(split).map(([k, v]) => [k, stage(v)])) as Record<
      keyof typeof split,
      Stage
    >;
    const row = {
      targetRate: opts.rate,
      achievedRate: Math.round(acked.size / elapsed),
      updates: acked.size,
      p50Ms: round1(percentile(latencies, 50)),
      p99Ms: round1(percentile(latencies, 99)),
      maxMs: round1(Math.max(0, ...latencies)),
      missing,
      request: stage(request),
      maxRequestsInFlight: maxInFlight,
      serviceCpuShare: Math.round(serviceCpu * 100) / 100,
      stages: opts.trace ? stages : { client: stages.client, parse: stages.parse },
      serviceLoopDelay: s?.loopDelay,
      followerLoopDelay: f.loopDelay,
      load: Math.round(loadavg()[0]! * 100) / 100,
    };
    log(
      `  latency: ${row.updates} updates at ${row.achievedRate}/s: p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, ` +
        `max ${row.maxMs} ms, missing ${missing} (load ${row.load})`,
    );
    log(
      `    publish request p50/p99 ${row.request.p50Ms}/${row.request.p99Ms} ms, ${maxInFlight} in flight at most, ` +
        `service CPU ${Math.round(serviceCpu * 100)} % of a core`,
    );
    for (const [k, v] of Object.entries(row.stages))
      log(`    ${k.padEnd(11)} p50 ${v.p50Ms} ms, p99 ${v.p99Ms} ms, max ${v.maxMs} ms`);
    const d = (x?: { p99Ms: number; maxMs: number }) =>
      x ? `p99 ${round1(x.p99Ms)} ms, max ${round1(x.maxMs)} ms` : "n/a";
    log(`    event-loop delay: service ${d(s?.loopDelay)}; follower ${d(f.loopDelay)}`);
    return row;
  } finally {
    await follower.stop(2_000);
  }
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
    const service = spawnChild("service.ts", {
      ...(opts.cpuProf ? { execArgv: ["--cpu-prof", "--cpu-prof-dir", opts.cpuProf] } : {}),
      env: {
        ...setup.env,
        IDMAP_FRONTENDS: "rest",
        ...(opts.trace ? { IDMAP_BENCH_TRACE: "1" } : {}),
        ...(opts.sync ? { IDMAP_EMBEDDED_SYNC: opts.sync } : {}),
        ...(opts.uncork ? { IDMAP_BENCH_UNCORK: "1" } : {}),
      },
    });
    const sampler = new LoadSampler(2_000);
    try {
      const { restPort } = await service.next<{ restPort: number }>("ready");
      const url = `http://127.0.0.1:${restPort}`;
      const firstDevice = serial;
      const latency = await latencyRun(url, service, opts, log);
      if (opts.latencyOnly) {
        rows.push({ backend, latency, load: sampler.stop() });
        continue;
      }
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
        `${(r.followersCost ? `${signed(-r.followersCost.slowdownPct)}%` : "-").padEnd(16)} ` +
        `${(r.followersCost ? `${signed(r.followersCost.cpuExtraPct)}%` : "-").padEnd(11)} ` +
        `${String(r.localLookups?.lookupPerSec ?? "-").padEnd(16)} ${r.load.median.toFixed(2)}`,
    );
  console.log(`\nresults: ${file}`);
}
