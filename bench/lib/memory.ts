/**
 * Memory (RSS) of the service holding N bindings, measured in child processes run with --expose-gc
 * (see children/rss.ts). On embedded, each target is measured twice: in the instance that published
 * the devices, and in a fresh instance started on the same data directory (the cache loaded from the
 * KV at start), which is what a restarted service carries. On memory the KV lives in the process too.
 * With `idleSeconds`, the publishing instance at the largest target is measured again after that long idle:
 * V8's memory reducer compacts the old generation only once the allocation rate has fallen.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BackendName } from "./backends.js";
import { spawnChild } from "./util.js";

export interface MemorySample {
  readonly backend: BackendName;
  readonly label: string;
  readonly target: number;
  readonly bindings: number;
  readonly rss: number;
  readonly heapUsed: number;
  /** V8's committed heap (used or not) at the same moment. */
  readonly heapTotal: number;
  readonly external: number;
  /** RSS of the service started on an empty map (the first child's, before seeding). */
  readonly baselineRss: number;
  readonly bytesPerBinding: number;
  readonly startMs: number;
  /** Since the process started: its cache fully loaded, and (fresh start) its first lookup answered. */
  readonly loadedMs: number;
  readonly firstLookupMs: number;
  /** Since the process started: its modules loaded (tsx transpiling them included), the service not started yet. */
  readonly modulesMs: number;
  /** Time of a /metrics scrape of this instance (the bindings gauges walk the cache), in ms: the first after the bindings arrived, and the next. */
  readonly firstScrapeMs: number;
  readonly scrapeMs: number;
}

export interface MemoryOptions {
  readonly targets: readonly number[];
  readonly backends: readonly BackendName[];
  readonly batchSize: number;
  /** Seconds the publishing instance at the largest target then stays idle before a second sample (0: none). */
  readonly idleSeconds: number;
}

interface RawSample {
  label: string;
  bindings: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  startMs: number;
  loadedMs: number;
  firstLookupMs: number;
  modulesMs: number;
  firstScrapeMs: number;
  scrapeMs: number;
}

export async function benchMemory(opts: MemoryOptions, progress: (line: string) => void): Promise<MemorySample[]> {
  const out: MemorySample[] = [];
  for (const backend of opts.backends) {
    const dataDir = mkdtempSync(join(tmpdir(), "idmap-bench-rss-"));
    const env = {
      IDMAP_KV_BACKEND: backend,
      CANONICAL_IDENTITY_MAP_ENABLED: "on",
      IDMAP_FRONTENDS: "rest,grpc",
      IDMAP_REST_PORT: "0",
      IDMAP_GRPC_PORT: "0",
      IDMAP_HOST: "127.0.0.1",
      IDMAP_DATA_DIR: dataDir,
      IDMAP_LOG_LEVEL: "silent",
      // Seeding speed only: durability does not change what the process holds.
      IDMAP_EMBEDDED_SYNC: "normal",
      IDMAP_AUTH_TOKENS: "",
    };
    const once = async (seed: boolean, fromDevice: number, targets: readonly number[], idleSeconds = 0) => {
      const child = spawnChild("rss.ts", { execArgv: ["--expose-gc"], env });
      const samples: RawSample[] = [];
      let nextDevice = fromDevice;
      child.proc.on("message", (m: { type: string } & Record<string, number>) => {
        if (m.type === "sample") samples.push(m as unknown as RawSample);
        if (m.type === "progress")
          progress(
            `[${backend}] memory: seeding, ${m.bindings!.toLocaleString("en-US")} of ${m.target!.toLocaleString("en-US")} bindings (${m.perSecond} devices/s)`,
          );
        if (m.type === "seeded") nextDevice = m.nextDevice!;
        if (m.type === "idle")
          progress(
            `[${backend}] memory: idle ${m.seconds} of ${m.of} s, RSS ${(m.rss! / 2 ** 20).toFixed(0)} MiB (V8 heap committed ${(m.heapTotal! / 2 ** 20).toFixed(0)} MiB)`,
          );
        if (m.type === "log")
          progress(
            `[${backend}] memory: service ${String(m.level)}: ${String((m as unknown as { msg: string }).msg)} ${String((m as unknown as { err?: string }).err ?? "")}`,
          );
      });
      child.send({
        type: "start",
        seed,
        fromDevice,
        targets,
        batchSize: opts.batchSize,
        idleSeconds,
      });
      await new Promise<void>((resolve, reject) => {
        child.proc.once("exit", (code) =>
          code === 0 ? resolve() : reject(new Error(`rss child exited with ${code}`)),
        );
        child.next("error").catch(() => {}); // errors surface as a non-zero exit
      });
      return { samples, nextDevice };
    };
    try {
      let device = 0;
      // One child per target (and, on embedded, a fresh instance after it), so each baseline is its own process.
      let baselineFresh: number | undefined;
      for (const target of opts.targets) {
        // The idle wait only at the largest map, where fixed costs no longer dominate a binding's share.
        const largest = target === opts.targets[opts.targets.length - 1];
        const seeded = await once(true, device, [target], largest ? opts.idleSeconds : 0);
        device = seeded.nextDevice;
        const base = seeded.samples.find((s) => s.label === "before seeding")!;
        const s = seeded.samples.find((x) => x.label.startsWith("seeded"))!;
        const push = (label: string, x: RawSample, baseline: number) => {
          const sample: MemorySample = {
            backend,
            label,
            target,
            bindings: x.bindings,
            rss: x.rss,
            heapUsed: x.heapUsed,
            heapTotal: x.heapTotal,
            external: x.external,
            baselineRss: baseline,
            bytesPerBinding: x.bindings > 0 ? (x.rss - baseline) / x.bindings : Number.NaN,
            startMs: x.startMs,
            loadedMs: x.loadedMs,
            firstLookupMs: x.firstLookupMs,
            modulesMs: x.modulesMs,
            firstScrapeMs: x.firstScrapeMs,
            scrapeMs: x.scrapeMs,
          };
          out.push(sample);
          progress(
            `[${backend}] memory: ${label}, ${x.bindings.toLocaleString("en-US")} bindings: RSS ${(x.rss / 2 ** 20).toFixed(0)} MiB (baseline ${(baseline / 2 ** 20).toFixed(0)} MiB), heap ${(x.heapUsed / 2 ** 20).toFixed(0)} MiB (of ${(x.heapTotal / 2 ** 20).toFixed(0)} committed), ${((x.rss - baseline) / x.bindings).toFixed(0)} B/binding${Number.isFinite(x.firstLookupMs) ? `, modules ${(x.modulesMs / 1000).toFixed(1)} s, first lookup ${(x.firstLookupMs / 1000).toFixed(1)} s, loaded ${(x.loadedMs / 1000).toFixed(1)} s` : ""}, a /metrics scrape ${x.firstScrapeMs.toFixed(0)} ms, then ${x.scrapeMs.toFixed(0)} ms`,
          );
        };
        // The first child's baseline is a service with an empty map; later children start on a seeded one.
        baselineFresh ??= base.rss;
        push("after publishing", s, baselineFresh);
        const idle = seeded.samples.find((x) => x.label.startsWith("idle"));
        if (idle) push(`after publishing, then ${idle.label}`, idle, baselineFresh);
        if (backend !== "memory") {
          const fresh = await once(false, 0, []);
          push("fresh start", fresh.samples[0]!, baselineFresh);
        }
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return out;
}
