/**
 * Publish throughput over REST, next to the raw KV client doing the same KV operations per update.
 * Per round: a set of new devices, the same devices after a DHCP move, then the move repeated
 * (unchanged). The service's KV cost per update comes from its own metrics
 * (identitymap_publish_kv_operations_total, identitymap_kv_operations_total), scraped around each
 * phase; the raw client then replays that operation mix for as many updates.
 */
import type { DeviceUpdate } from "../../src/domain/device-update.js";
import type { RawKv } from "./raw-kv.js";
import { delta, median, parseProm, processCpuMs, type Counters } from "./util.js";
import { batches } from "./workload.js";

export const PHASES = ["new", "move", "repeat"] as const;
export type Phase = (typeof PHASES)[number];
const GENERATION: Record<Phase, number> = { new: 0, move: 1, repeat: 1 };
const EXPECTED: Record<Phase, string> = { new: "created", move: "updated", repeat: "unchanged" };

/** KV operations per update, by kind (service metrics, averaged over a phase). */
export interface OpMix {
  readonly reads: number;
  readonly writes: number;
  readonly get: number;
  readonly getMany: number;
  readonly keysPerGetMany: number;
  readonly create: number;
  readonly update: number;
  readonly delete: number;
}

export interface PublishRow {
  readonly backend: string;
  readonly phase: Phase;
  readonly updatesPerRound: number;
  readonly batchSize: number;
  readonly batchesInFlight: number;
  readonly rounds: number;
  /** Service, updates per second: median of rounds, and each round. */
  readonly service: number;
  readonly serviceRounds: readonly number[];
  /** CPU time of the service process per update, in microseconds (median of rounds). */
  readonly serviceCpuUs: number;
  readonly kvOpsPerUpdate: OpMix;
  /** Outcomes the service reported, summed over rounds (all `expected` when healthy). */
  readonly outcomes: Readonly<Record<string, number>>;
  readonly expectedOutcome: string;
  /** Raw client replaying the same mix, updates per second; null when the updates cost no KV operation. */
  readonly raw: number | null;
  readonly rawRounds: readonly number[];
  readonly rawLabel: string;
  readonly rawInFlight: number;
  /** Raw writes that failed (the replay goes on without their keys); 0 when healthy. */
  readonly rawFailures: number;
  readonly rawFirstFailure?: string;
  readonly ratio: number | null;
}

export interface PublishOptions {
  readonly updatesPerRound: number;
  readonly batchSize: number;
  readonly batchesInFlight: number;
  readonly rounds: number;
  readonly rawInFlight: number;
}

async function scrape(restPort: number): Promise<Counters> {
  const r = await fetch(`http://127.0.0.1:${restPort}/metrics`);
  return parseProm(await r.text());
}

/** POSTs the batches with `inFlight` requests at a time; returns updates per second and the outcomes. */
export async function publishOverRest(
  restPort: number,
  updates: DeviceUpdate[][],
  inFlight: number,
): Promise<{ rate: number; outcomes: Record<string, number> }> {
  const bodies = updates.map((u) => JSON.stringify({ updates: u }));
  const outcomes: Record<string, number> = {};
  let next = 0;
  let total = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, bodies.length) }, async () => {
      while (next < bodies.length) {
        const i = next++;
        const res = await fetch(`http://127.0.0.1:${restPort}/v1/device-updates`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: bodies[i]!,
        });
        const text = await res.text();
        if (res.status !== 200) throw new Error(`publish answered ${res.status}: ${text.slice(0, 300)}`);
        for (const r of (JSON.parse(text) as { results: { outcome: string }[] }).results)
          outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
        total += updates[i]!.length;
      }
    }),
  );
  return { rate: total / ((performance.now() - start) / 1000), outcomes };
}

function opMix(a: Counters, b: Counters, updates: number): OpMix {
  const per = (name: string, match: Record<string, string>) => delta(a, b, name, match) / updates;
  const getManyOps = delta(a, b, "identitymap_kv_operations_total", { op: "get_many" });
  return {
    reads: per("identitymap_publish_kv_operations_total", { op: "read" }),
    writes: per("identitymap_publish_kv_operations_total", { op: "write" }),
    get: per("identitymap_kv_operations_total", { op: "get" }),
    getMany: getManyOps / updates,
    keysPerGetMany: getManyOps > 0 ? delta(a, b, "identitymap_kv_keys_total", { op: "get_many" }) / getManyOps : 0,
    create: per("identitymap_kv_operations_total", { op: "create" }),
    update: per("identitymap_kv_operations_total", { op: "update" }),
    delete: per("identitymap_kv_operations_total", { op: "delete" }),
  };
}

const VALUE = new TextEncoder().encode("r".repeat(300)); // about an encoded canonical record with its reverse index

/**
 * The raw client replaying `mix` for `updates` updates, `inFlight` at a time: per update its reads one
 * after another, then its writes together. Creates add keys to a pool, updates and deletes take a key
 * from it (never one another worker holds), so no write conflicts. Returns updates per second.
 */
export interface RawReplay {
  readonly rate: number;
  /** Writes that failed (a conflict would mean the replay raced itself; anything else, the server). */
  readonly failures: number;
  readonly firstFailure?: string;
}

export async function replayOnRaw(
  raw: RawKv,
  mix: OpMix,
  updates: number,
  inFlight: number,
  tag: string,
): Promise<RawReplay> {
  const pool: { key: string; rev: number }[] = [];
  let fresh = 0;
  const newKey = () => `${tag}/k${fresh++}`;
  const seed = Math.max(64, Math.ceil(inFlight * (mix.update + mix.delete) * 2));
  await Promise.all(
    Array.from({ length: seed }, async () => {
      const key = newKey();
      pool.push({ key, rev: await raw.create(key, VALUE) });
    }),
  );
  const count = (rate: number, i: number) => Math.floor((i + 1) * rate + 1e-9) - Math.floor(i * rate + 1e-9);
  const keysPerRead = Math.max(1, Math.round(mix.keysPerGetMany));
  // A failed write drops its key from the pool and is counted; the replay goes on.
  let failures = 0;
  let firstFailure: string | undefined;
  const failed = (e: unknown) => {
    failures++;
    firstFailure ??= e instanceof Error ? e.message : String(e);
  };
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < updates) {
        const i = next++;
        for (let r = count(mix.getMany, i); r > 0; r--)
          await raw.getMany(Array.from({ length: keysPerRead }, (_, j) => pool[(i + j) % pool.length]!.key));
        for (let r = count(mix.get, i); r > 0; r--) await raw.getMany([pool[i % pool.length]!.key]);
        const writes: Promise<unknown>[] = [];
        for (let w = count(mix.create, i); w > 0; w--) {
          const key = newKey();
          writes.push(raw.create(key, VALUE).then((rev) => void pool.push({ key, rev }), failed));
        }
        for (let w = count(mix.update, i); w > 0; w--) {
          const e = pool.shift();
          if (e)
            writes.push(raw.update(e.key, VALUE, e.rev).then((rev) => void pool.push({ key: e.key, rev }), failed));
        }
        for (let w = count(mix.delete, i); w > 0; w--) {
          const e = pool.shift();
          if (e) writes.push(raw.delete(e.key, e.rev).catch(failed));
        }
        await Promise.all(writes);
      }
    }),
  );
  return { rate: updates / ((performance.now() - start) / 1000), failures, ...(firstFailure ? { firstFailure } : {}) };
}

/** Runs the rounds on a running service (devices from `firstDevice` on) and its backend's raw client. */
export async function benchPublish(
  backend: string,
  restPort: number,
  pid: number,
  raw: RawKv,
  opts: PublishOptions,
  firstDevice: number,
  progress: (line: string) => void,
): Promise<PublishRow[]> {
  const n = opts.updatesPerRound;
  // Warm-up: one batch through every phase, and the raw client, before anything is timed.
  const warm = 15_000_000;
  const warmSize = Math.min(opts.batchSize, n);
  let warmMix: OpMix | undefined;
  for (const phase of PHASES) {
    const a = await scrape(restPort);
    await publishOverRest(restPort, batches(warm, warmSize, GENERATION[phase], opts.batchSize), opts.batchesInFlight);
    if (phase === "move") warmMix = opMix(a, await scrape(restPort), warmSize);
  }
  if (warmMix) await replayOnRaw(raw, warmMix, Math.min(200, n), opts.rawInFlight, "warm");

  const acc = new Map<
    Phase,
    {
      svc: number[];
      cpu: number[];
      raw: number[];
      rawFailures: number;
      firstFailure?: string;
      mixes: OpMix[];
      outcomes: Record<string, number>;
    }
  >();
  for (const p of PHASES) acc.set(p, { svc: [], cpu: [], raw: [], rawFailures: 0, mixes: [], outcomes: {} });
  for (let round = 0; round < opts.rounds; round++) {
    const base = firstDevice + round * n;
    for (const phase of PHASES) {
      const x = acc.get(phase)!;
      const a = await scrape(restPort);
      const cpu0 = processCpuMs(pid);
      const { rate, outcomes } = await publishOverRest(
        restPort,
        batches(base, n, GENERATION[phase], opts.batchSize),
        opts.batchesInFlight,
      );
      const cpuUs = ((processCpuMs(pid) - cpu0) * 1000) / n;
      const mix = opMix(a, await scrape(restPort), n);
      x.svc.push(rate);
      x.cpu.push(cpuUs);
      x.mixes.push(mix);
      for (const [k, v] of Object.entries(outcomes)) x.outcomes[k] = (x.outcomes[k] ?? 0) + v;
      const ops = mix.getMany + mix.get + mix.create + mix.update + mix.delete;
      let rawRate: number | undefined;
      if (ops > 0) {
        const r = await replayOnRaw(raw, mix, n, opts.rawInFlight, `r${round}${phase}`);
        rawRate = r.rate;
        x.raw.push(r.rate);
        x.rawFailures += r.failures;
        if (r.firstFailure) x.firstFailure ??= r.firstFailure;
      }
      progress(
        `[${backend}] publish ${phase.padEnd(6)} round ${round + 1}/${opts.rounds}: ${Math.round(rate)} updates/s (${Math.round(cpuUs)} us service CPU/update), ${(mix.reads + mix.writes).toFixed(2)} KV ops/update` +
          (rawRate !== undefined ? `; raw ${raw.label} ${Math.round(rawRate)} updates/s` : "; no KV operations") +
          (x.rawFailures > 0 ? ` (raw write failures so far: ${x.rawFailures}, first: ${x.firstFailure})` : ""),
      );
    }
  }
  return PHASES.map((phase) => {
    const x = acc.get(phase)!;
    const avg = (f: (m: OpMix) => number) => x.mixes.reduce((s, m) => s + f(m), 0) / x.mixes.length;
    const mix: OpMix = {
      reads: avg((m) => m.reads),
      writes: avg((m) => m.writes),
      get: avg((m) => m.get),
      getMany: avg((m) => m.getMany),
      keysPerGetMany: avg((m) => m.keysPerGetMany),
      create: avg((m) => m.create),
      update: avg((m) => m.update),
      delete: avg((m) => m.delete),
    };
    const service = median(x.svc);
    const rawRate = x.raw.length ? median(x.raw) : null;
    return {
      backend,
      phase,
      updatesPerRound: n,
      batchSize: opts.batchSize,
      batchesInFlight: opts.batchesInFlight,
      rounds: opts.rounds,
      service,
      serviceRounds: x.svc,
      serviceCpuUs: median(x.cpu),
      kvOpsPerUpdate: mix,
      outcomes: x.outcomes,
      expectedOutcome: EXPECTED[phase],
      raw: rawRate,
      rawRounds: x.raw,
      rawLabel: raw.label,
      rawInFlight: opts.rawInFlight,
      rawFailures: x.rawFailures,
      ...(x.firstFailure ? { rawFirstFailure: x.firstFailure } : {}),
      ratio: rawRate ? service / rawRate : null,
    };
  });
}
