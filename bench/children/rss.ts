/**
 * Memory of the service with many bindings (run with --expose-gc). The service runs in this process
 * as `idmap serve` would (both front-ends listening); devices are published in-process through the
 * publish service until the local cache (which mirrors every binding) holds each target count, and
 * the process's RSS is read after full garbage collections. With `seed: false` it only starts on the
 * data directory it is given and reports what a freshly started instance holds. With `idleSeconds`,
 * the seeded instance is sampled once more after that long without publishing.
 */
import { loadConfig } from "../../src/app/config.js";
import { createApp } from "../../src/app/container.js";
import type { Logger } from "../../src/app/logger.js";
import { startServer } from "../../src/app/server.js";
import { seedBindings } from "../lib/workload.js";

interface Start {
  type: "start";
  seed: boolean;
  fromDevice: number;
  targets: number[];
  batchSize: number;
  /** After the last target, stay idle this long (no publishing) and sample again: V8's memory reducer. */
  idleSeconds: number;
}

const send = (m: object) => process.send?.(m);
const gc = (globalThis as { gc?: () => void }).gc;

async function settle(): Promise<NodeJS.MemoryUsage> {
  if (!gc) throw new Error("run with --expose-gc");
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage();
}

process.once("message", (m: Start) => {
  run(m).then(
    () => process.exit(0),
    (e: unknown) => {
      send({ type: "error", error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      process.exit(1);
    },
  );
});

async function run(m: Start): Promise<void> {
  const started = performance.now();
  const config = loadConfig(process.env);
  // Warnings and errors go to the parent (the cache failing to load would make the numbers meaningless).
  const forward = (level: string) => (obj: object, msg: string) => send({ type: "log", level, msg, ...obj });
  const log: Logger = { info() {}, debug() {}, warn: forward("warn"), error: forward("error") };
  // Modules are loaded (tsx transpiles them on a first run): what follows is the service starting.
  const serviceStart = performance.now();
  const server = await startServer(config, await createApp(config, { logger: log }));
  const cache = server.app.store.cache;
  if (!cache) throw new Error("the service has no binding cache (is CANONICAL_IDENTITY_MAP_ENABLED on?)");
  // A fresh instance answers lookups while its cache loads: the first answer over REST, timed from the
  // process's start (module loading included), for a device the seeding published first.
  let firstLookupMs = Number.NaN;
  if (!m.seed) {
    const r = await fetch(`http://127.0.0.1:${server.restPort}/v1/canonical-devices/lookup?armis_id=A-0`);
    if (r.status !== 200) throw new Error(`fresh start: the first lookup answered ${r.status}`);
    firstLookupMs = performance.now();
  }
  const modulesMs = serviceStart;
  // A cache whose first load failed retries in the background: wait for it, up to five minutes.
  while (!cache.isSynced) {
    if (performance.now() - started > 300_000) throw new Error("the binding cache did not sync within 5 minutes");
    await new Promise((r) => setTimeout(r, 100));
  }
  const startMs = performance.now() - started;
  // Since the process started (performance.now() counts from there): what an operator waits for.
  const loadedMs = performance.now();
  const sample = async (label: string) => {
    const mem = await settle();
    // Prometheus scrapes: the bindings gauges count the whole cache at scrape time (binding-census.ts).
    // The first one after new bindings arrived costs more (it learns which device-id bindings are redirects).
    const scrape = async () => {
      const t = performance.now();
      await server.app.metrics.registry.metrics();
      return performance.now() - t;
    };
    const firstScrapeMs = await scrape();
    const scrapeMs = await scrape();
    send({
      type: "sample",
      label,
      bindings: cache.size,
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      // What V8 holds committed beside what is used: RSS above heapTotal + external is the allocator's.
      heapTotal: mem.heapTotal,
      external: mem.external,
      arrayBuffers: mem.arrayBuffers,
      startMs,
      loadedMs,
      firstLookupMs,
      modulesMs,
      firstScrapeMs,
      scrapeMs,
    });
  };
  await sample(m.seed ? "before seeding" : "fresh start");
  if (!m.seed) {
    await server.close();
    return;
  }
  let device = m.fromDevice;
  const t0 = performance.now();
  for (const target of m.targets) {
    device = await seedBindings({
      publish: (batch) => server.app.publish.publish(batch, "bench-seed"),
      bindings: () => cache.size,
      target,
      from: device,
      batchSize: m.batchSize,
      progress: (bindings, perSecond) => send({ type: "progress", bindings, target, perSecond }),
    });
    await sample(`seeded ${target}`);
  }
  // A service whose publishing pauses: V8's memory reducer starts compacting the old generation some
  // seconds after the allocation rate falls, which four forced collections right away do not do.
  if (m.idleSeconds > 0) {
    // RSS every 10 s without forcing a collection: when the reducer acts shows in the progress lines.
    for (let waited = 0; waited < m.idleSeconds; ) {
      const step = Math.min(10, m.idleSeconds - waited);
      await new Promise((r) => setTimeout(r, step * 1000));
      waited += step;
      const mem = process.memoryUsage();
      send({ type: "idle", seconds: waited, of: m.idleSeconds, rss: mem.rss, heapTotal: mem.heapTotal });
    }
    await sample(`idle ${m.idleSeconds} s`);
  }
  send({ type: "seeded", nextDevice: device, seedSeconds: (performance.now() - t0) / 1000 });
  await server.close();
}
