/**
 * Lookup latency and throughput: the service's REST and gRPC front-ends next to their ceilings (a
 * bare fastify and a bare grpc-js server answering the same lookup with the same payload from a
 * Map), driven by the same load generator (autocannon for HTTP, a grpc-js client pool for gRPC) with
 * 1 and 64 requests in flight. Service and ceiling take turns, round after round; medians are kept.
 */
import { Agent, request } from "node:http";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import autocannon from "autocannon";
import { PROTO_DIR } from "../../src/adapters/proto/proto-root.js";
import type { FrontendName } from "./backends.js";
import { median, percentile, processCpuMs, Samples, sleep } from "./util.js";

/** One load run: requests per second and latency percentiles in milliseconds. */
export interface LoadRun {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly requests: number;
  readonly errors: number;
  /** CPU time the server process spent per answered request, in microseconds (from /proc; NaN elsewhere). */
  readonly serverCpuUs: number;
}

export interface LookupRow {
  readonly backend: string;
  readonly frontend: FrontendName;
  readonly concurrency: number;
  readonly rounds: number;
  readonly durationMs: number;
  readonly service: LoadRun;
  readonly ceiling: LoadRun;
  readonly ceilingLabel: string;
  /** service rps / ceiling rps (medians of rounds). */
  readonly ratio: number;
  /**
   * The same clients paced at a fixed total rate (a quarter of the ceiling's saturated throughput): latency
   * with the server not overloaded. Closed-loop saturation makes p99 mostly queueing: with N in flight
   * the mean latency is N / throughput whatever the server does.
   */
  readonly paced?: { readonly rate: number; readonly service: LoadRun; readonly ceiling: LoadRun };
}

export interface LookupOptions {
  readonly frontends: readonly FrontendName[];
  readonly concurrency: readonly number[];
  readonly durationMs: number;
  readonly rounds: number;
}

export interface Ports {
  readonly restPort: number;
  readonly grpcPort: number;
  /** The server's process, for its CPU time. */
  readonly pid: number;
}

function summarize(samples: Samples, errors: number, startMs: number, cpuMs: number): LoadRun {
  const elapsed = (performance.now() - startMs) / 1000;
  const v = samples.values();
  return {
    rps: v.length / elapsed,
    p50: percentile(v, 0.5),
    p99: percentile(v, 0.99),
    requests: v.length,
    errors,
    serverCpuUs: (cpuMs * 1000) / Math.max(1, v.length),
  };
}

// --- HTTP: autocannon, with latencies taken from its response events (its histogram keeps whole ms) ---

export async function httpLoad(
  port: number,
  paths: readonly string[],
  connections: number,
  durationMs: number,
  pid = 0,
): Promise<LoadRun> {
  const samples = new Samples();
  const cpu0 = processCpuMs(pid);
  let i = 0;
  let errors = 0;
  const start = performance.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `http://127.0.0.1:${port}`,
        connections,
        duration: durationMs / 1000,
        requests: [{ method: "GET", setupRequest: (req) => ({ ...req, path: paths[i++ % paths.length]! }) }],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status === 200) samples.push(ms);
      else errors++;
    });
  });
  return summarize(samples, errors + result.errors + result.timeouts, start, processCpuMs(pid) - cpu0);
}

// --- gRPC: a pool of grpc-js clients with N calls in flight ---

const def = protoLoader.loadSync(["identitymap/v1/identity_map_service.proto"], {
  keepCase: true,
  longs: Number,
  enums: Number,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
});
const pkg = grpc.loadPackageDefinition(def) as unknown as {
  identitymap: { v1: { IdentityMapService: grpc.ServiceClientConstructor } };
};

export type LookupClient = grpc.Client & {
  GetCanonicalDevice(req: object, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void): void;
};

/** A client on a connection of its own (no subchannel sharing between pool members). */
export function grpcClient(port: number): LookupClient {
  return new pkg.identitymap.v1.IdentityMapService(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
  }) as unknown as LookupClient;
}

export const MAC_KIND = 4; // IDENTITY_KIND_MAC

export function lookupOnce(client: LookupClient, mac: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) =>
    client.GetCanonicalDevice({ identity_keys: [{ kind: MAC_KIND, value: mac }] }, (err, res) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

export const GRPC_POOL = 4;

export async function grpcLoad(
  clients: readonly LookupClient[],
  macs: readonly string[],
  inFlight: number,
  durationMs: number,
  pid = 0,
): Promise<LoadRun> {
  const samples = new Samples();
  const cpu0 = processCpuMs(pid);
  let errors = 0;
  let i = 0;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: inFlight }, async (_, w) => {
      const client = clients[w % clients.length]!;
      while (performance.now() < end) {
        const mac = macs[i++ % macs.length]!;
        const t0 = performance.now();
        try {
          const r = await lookupOnce(client, mac);
          if (r.found) samples.push(performance.now() - t0);
          else errors++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return summarize(samples, errors, start, processCpuMs(pid) - cpu0);
}

/**
 * `workers` clients sending at a fixed total `rate`: each sends on its own schedule (spread evenly)
 * and never bursts to catch up, so a server that keeps up sees a steady load. Latency is from send to
 * the complete answer.
 */
export async function pacedLoad(
  workers: number,
  rate: number,
  durationMs: number,
  pid: number,
  call: (w: number, i: number) => Promise<boolean>,
): Promise<LoadRun> {
  const samples = new Samples();
  let errors = 0;
  let i = 0;
  const cpu0 = processCpuMs(pid);
  const interval = (workers / rate) * 1000;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      let next = start + (w / workers) * interval;
      while (next < end) {
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
        const t0 = performance.now();
        if (await call(w, i++).catch(() => false)) samples.push(performance.now() - t0);
        else errors++;
        next = Math.max(next + interval, performance.now());
      }
    }),
  );
  return summarize(samples, errors, start, processCpuMs(pid) - cpu0);
}

/** node:http GETs on keep-alive connections (one per worker), for the paced runs. */
export function httpGetter(
  port: number,
  paths: readonly string[],
  workers: number,
): { call: (w: number, i: number) => Promise<boolean>; close(): void } {
  const agent = new Agent({ keepAlive: true, maxSockets: workers });
  return {
    call: (_w, i) =>
      new Promise<boolean>((resolve) => {
        const req = request({ host: "127.0.0.1", port, path: paths[i % paths.length]!, agent }, (res) => {
          res.on("data", () => {});
          res.on("end", () => resolve(res.statusCode === 200));
          res.on("error", () => resolve(false));
        });
        req.on("error", () => resolve(false));
        req.end();
      }),
    close: () => agent.destroy(),
  };
}

function medianRun(runs: readonly LoadRun[]): LoadRun {
  return {
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    requests: runs.reduce((s, r) => s + r.requests, 0),
    errors: runs.reduce((s, r) => s + r.errors, 0),
    serverCpuUs: median(runs.map((r) => r.serverCpuUs)),
  };
}

/** Service and ceiling take turns, `rounds` times, alternating who goes first; the median run of each. */
async function alternate(
  rounds: number,
  service: () => Promise<LoadRun>,
  ceiling: () => Promise<LoadRun>,
): Promise<{ s: LoadRun; b: LoadRun }> {
  const svc: LoadRun[] = [];
  const ceil: LoadRun[] = [];
  for (let round = 0; round < rounds; round++) {
    // Alternate who goes first, so a drift in the machine's load falls on both.
    if (round % 2 === 0) {
      svc.push(await service());
      ceil.push(await ceiling());
    } else {
      ceil.push(await ceiling());
      svc.push(await service());
    }
  }
  return { s: medianRun(svc), b: medianRun(ceil) };
}

/** Concurrency at which latency is also measured paced (the p99 target's). */
export const PACED_CONCURRENCY = 64;
export const PACED_FRACTION = 0.25;

const line = (r: LoadRun) =>
  `${Math.round(r.rps)} req/s p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms, ${Math.round(r.serverCpuUs)} us CPU/req`;

export async function benchLookups(
  backend: string,
  service: Ports,
  ceiling: Ports,
  macs: readonly string[],
  opts: LookupOptions,
  progress: (line: string) => void,
): Promise<LookupRow[]> {
  const paths = macs.map((m) => `/v1/canonical-devices/lookup?mac=${encodeURIComponent(m)}`);
  const rows: LookupRow[] = [];
  const pools = new Map<number, LookupClient[]>();
  const pool = (port: number, c: number) => {
    let p = pools.get(port);
    if (!p) pools.set(port, (p = Array.from({ length: GRPC_POOL }, () => grpcClient(port))));
    return p.slice(0, Math.min(GRPC_POOL, c));
  };
  try {
    for (const frontend of opts.frontends) {
      for (const c of opts.concurrency) {
        const run = (side: Ports, ms = opts.durationMs): Promise<LoadRun> =>
          frontend === "rest"
            ? httpLoad(side.restPort, paths, c, ms, side.pid)
            : grpcLoad(pool(side.grpcPort, c), macs, c, ms, side.pid);
        // Warm both sides up (JIT, connections) before anything counts.
        for (const side of [service, ceiling]) await run(side, Math.min(500, opts.durationMs));
        const { s, b } = await alternate(
          opts.rounds,
          () => run(service),
          () => run(ceiling),
        );
        const ceilingLabel = frontend === "rest" ? "bare fastify" : "bare grpc-js";
        progress(
          `[${backend}] lookup ${frontend.padEnd(4)} x${String(c).padEnd(2)}: service ${line(s)}; ${ceilingLabel} ${line(b)}; ratio ${(s.rps / b.rps).toFixed(2)}` +
            (s.errors + b.errors > 0 ? `; ERRORS service ${s.errors} ceiling ${b.errors}` : ""),
        );
        let paced: LookupRow["paced"];
        if (c === PACED_CONCURRENCY) {
          const rate = Math.max(100, Math.round(b.rps * PACED_FRACTION));
          const pacedRun = async (side: Ports): Promise<LoadRun> => {
            if (frontend === "grpc") {
              const clients = pool(side.grpcPort, c);
              return pacedLoad(
                c,
                rate,
                opts.durationMs,
                side.pid,
                async (w, i) => (await lookupOnce(clients[w % clients.length]!, macs[i % macs.length]!)).found === true,
              );
            }
            const getter = httpGetter(side.restPort, paths, c);
            try {
              return await pacedLoad(c, rate, opts.durationMs, side.pid, getter.call);
            } finally {
              getter.close();
            }
          };
          const p = await alternate(
            opts.rounds,
            () => pacedRun(service),
            () => pacedRun(ceiling),
          );
          paced = { rate, service: p.s, ceiling: p.b };
          progress(
            `[${backend}] lookup ${frontend.padEnd(4)} x${c} paced at ${rate} req/s: service ${line(p.s)}; ${ceilingLabel} ${line(p.b)}`,
          );
        }
        rows.push({
          backend,
          frontend,
          concurrency: c,
          rounds: opts.rounds,
          durationMs: opts.durationMs,
          service: s,
          ceiling: b,
          ceilingLabel,
          ratio: s.rps / b.rps,
          ...(paced ? { paced } : {}),
        });
      }
    }
  } finally {
    for (const p of pools.values()) for (const cl of p) cl.close();
  }
  return rows;
}
