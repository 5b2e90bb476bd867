/**
 * `npm run bench`: per KV backend, publish throughput (next to the raw client), lookup latency and
 * throughput over REST and gRPC (next to bare fastify and grpc-js), publish CPU per update as the map
 * grows (10 000 to 1 000 000 bindings), and the memory the service needs for 100 000 and 1 000 000
 * bindings (5 000 000 with --memory=...). The service runs in a child process as `idmap serve` would;
 * the load generators run here, so each side has one of the machine's two cores.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { serviceSetup, type BackendName, type FrontendName, type Servers } from "./backends.js";
import { benchLookups, grpcClient, lookupOnce, type LookupRow } from "./lookup.js";
import { benchMemory, type MemorySample } from "./memory.js";
import { benchPublish, publishOverRest, type PublishRow } from "./publish.js";
import { openRawKv } from "./raw-kv.js";
import { benchScale, type ScaleRow } from "./scale.js";
import { evaluateMemoryTargets, evaluateScaleTargets, evaluateTargets, type Report } from "./report.js";
import { BENCH_DIR, LoadSampler, machine, spawnChild, type Child } from "./util.js";
import { batches, deviceMac } from "./workload.js";

export const SECTIONS = ["publish", "scale", "lookup", "memory"] as const;
export type Section = (typeof SECTIONS)[number];

export interface BenchOptions {
  readonly backends: readonly BackendName[];
  readonly frontends: readonly FrontendName[];
  readonly sections: readonly Section[];
  readonly servers: Servers;
  readonly publish: {
    readonly updatesPerRound: number;
    readonly batchSize: number;
    readonly batchesInFlight: number;
    readonly rounds: number;
    readonly rawInFlight: number;
  };
  readonly lookup: {
    readonly concurrency: readonly number[];
    readonly durationMs: number;
    readonly rounds: number;
    readonly keys: number;
  };
  readonly memory: {
    readonly targets: readonly number[];
    readonly backends: readonly BackendName[];
    /** Seconds the publishing instance stays idle before it is measured again (0: not measured). */
    readonly idleSeconds: number;
  };
  /** Publish CPU per update at each map size (bindings), in-process. */
  readonly scale: {
    readonly targets: readonly number[];
    readonly backends: readonly BackendName[];
    readonly updates: number;
  };
  /** The service's IDMAP_LOG_LEVEL (its default, info, unless told). */
  readonly logLevel: string;
  /** Write a CPU profile of each service process (node --cpu-prof) here. */
  readonly profileDir?: string;
}

async function startService(
  env: Record<string, string>,
  profileDir: string | undefined,
  backend: string,
): Promise<{ child: Child; restPort: number; grpcPort: number }> {
  // One directory per service: node writes a profile per thread (tsx runs its loader in a worker); the largest is the main thread.
  const execArgv = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${join(profileDir, `service-${backend}`)}`] : [];
  const child = spawnChild("service.ts", { env, execArgv });
  try {
    const ready = await withTimeout(
      child.next<{ restPort: number; grpcPort: number }>("ready"),
      90_000,
      "the service did not start within 90 s",
    );
    return { child, ...ready };
  } catch (e) {
    await child.stop(2_000);
    throw e;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(why)), ms)))]).finally(
    () => clearTimeout(t),
  );
}

/** The service's answers for the lookup keys, over both front-ends: the ceiling serves exactly these. */
async function payloads(
  restPort: number,
  grpcPort: number,
  macs: readonly string[],
): Promise<{ rest: Record<string, unknown>; grpc: Record<string, unknown> }> {
  const rest: Record<string, unknown> = {};
  const grpc: Record<string, unknown> = {};
  const client = grpcClient(grpcPort);
  try {
    for (const mac of macs) {
      const r = await fetch(`http://127.0.0.1:${restPort}/v1/canonical-devices/lookup?mac=${encodeURIComponent(mac)}`);
      if (r.status !== 200) throw new Error(`lookup of ${mac} answered ${r.status}`);
      rest[mac] = await r.json();
      grpc[mac] = await lookupOnce(client, mac);
    }
  } finally {
    client.close();
  }
  return { rest, grpc };
}

export async function runBench(opts: BenchOptions, progress: (line: string) => void): Promise<Report> {
  const started = new Date();
  const t0 = performance.now();
  const load = new LoadSampler();
  const run = `idmap_bench_${randomUUID().replace(/-/g, "").slice(0, 10)}`;
  if (opts.profileDir) mkdirSync(opts.profileDir, { recursive: true });
  const publish: PublishRow[] = [];
  const lookup: LookupRow[] = [];
  let memory: MemorySample[] = [];
  let scale: ScaleRow[] = [];
  const skipped: { backend: string; reason: string }[] = [];
  const wants = (s: Section) => opts.sections.includes(s);

  for (const backend of opts.backends) {
    if (!wants("publish") && !wants("lookup")) break;
    const began = performance.now();
    const setup = serviceSetup(backend, opts.servers, `${run}_${backend}`, opts.logLevel);
    let service: Awaited<ReturnType<typeof startService>> | undefined;
    let ceiling: Child | undefined;
    try {
      try {
        service = await startService(setup.env, opts.profileDir, backend);
      } catch (e) {
        const reason = e instanceof Error ? e.message.split("\n")[0]!.slice(0, 200) : String(e);
        progress(`[${backend}] unavailable, skipped: ${reason}`);
        skipped.push({ backend, reason });
        continue;
      }
      progress(`[${backend}] service up (REST :${service.restPort}, gRPC :${service.grpcPort})`);
      let devices = 0;
      if (wants("publish")) {
        const raw = await openRawKv(backend, opts.servers, `${run}_${backend}`);
        try {
          publish.push(
            ...(await benchPublish(
              backend,
              service.restPort,
              service.child.proc.pid ?? 0,
              raw,
              { ...opts.publish },
              0,
              progress,
            )),
          );
        } finally {
          await raw.close();
        }
        devices = opts.publish.updatesPerRound * opts.publish.rounds;
      }
      if (wants("lookup") && opts.frontends.length > 0) {
        const keys = Math.max(1, opts.lookup.keys);
        if (devices < keys) await publishOverRest(service.restPort, batches(devices, keys - devices, 0, 1000), 1);
        const macs = Array.from({ length: keys }, (_, i) => deviceMac(i));
        ceiling = spawnChild("ceiling.ts");
        ceiling.send({ type: "start", ...(await payloads(service.restPort, service.grpcPort, macs)) });
        const c = await withTimeout(
          ceiling.next<{ restPort: number; grpcPort: number }>("ready"),
          60_000,
          "the ceiling servers did not start",
        );
        lookup.push(
          ...(await benchLookups(
            backend,
            { ...service, pid: service.child.proc.pid ?? 0 },
            { ...c, pid: ceiling.proc.pid ?? 0 },
            macs,
            {
              frontends: opts.frontends,
              concurrency: opts.lookup.concurrency,
              durationMs: opts.lookup.durationMs,
              rounds: opts.lookup.rounds,
            },
            progress,
          )),
        );
      }
    } finally {
      await ceiling?.stop();
      await service?.child.stop();
      await setup
        .cleanup()
        .catch((e: unknown) => progress(`[${backend}] cleanup failed: ${e instanceof Error ? e.message : String(e)}`));
    }
    progress(`[${backend}] done in ${((performance.now() - began) / 1000).toFixed(0)} s`);
  }

  if (wants("scale")) {
    const backends = opts.scale.backends.filter((b) => b === "embedded" || b === "memory");
    if (backends.length)
      scale = await benchScale(
        {
          targets: opts.scale.targets,
          backends,
          updates: opts.scale.updates,
          batchSize: opts.publish.batchSize,
          rounds: opts.publish.rounds,
        },
        progress,
      );
  }

  if (wants("memory")) {
    const backends = opts.memory.backends.filter((b) => b === "embedded" || b === "memory");
    if (backends.length)
      memory = await benchMemory(
        { targets: opts.memory.targets, backends, batchSize: 1000, idleSeconds: opts.memory.idleSeconds },
        progress,
      );
  }

  return {
    version: 1,
    startedAt: started.toISOString(),
    durationSeconds: (performance.now() - t0) / 1000,
    machine: machine(),
    load: load.stop(),
    options: (({ servers: _servers, ...rest }) => rest)(opts),
    publish,
    lookup,
    memory,
    scale,
    skipped,
    targets: [...evaluateTargets(lookup), ...evaluateScaleTargets(scale), ...evaluateMemoryTargets(memory)],
  };
}

export const RESULTS_DIR = join(BENCH_DIR, "results");
