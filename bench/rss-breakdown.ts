/**
 * Where a publishing instance's RSS goes: seeds N bindings in this process through the publish
 * service (as the memory section's child does, without front-ends), then splits the RSS by mapping
 * (`/proc/self/smaps`: V8's pages, malloc's main heap, mapped files) and V8's heap by space, after
 * four forced collections; then, with --poll=SECONDS, reads the RSS every 10 s without forcing any,
 * which shows when V8's memory reducer gives the old generation's slack back.
 *
 *   npm run bench:rss -- 1000000 --poll=180 [--batch=1000]
 *
 * Linux only (it reads /proc). Uses the configured backend (embedded by default); the data directory
 * is IDMAP_DATA_DIR if set, else a temporary one, removed at the end.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import v8 from "node:v8";
import { loadConfig } from "../src/app/config.js";
import { createApp } from "../src/app/container.js";
import type { Logger } from "../src/app/logger.js";
import { seedBindings } from "./lib/workload.js";

const MiB = 2 ** 20;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;

/** RSS in KiB by kind of mapping, from /proc/self/smaps. */
function rssByMapping(): Map<string, number> {
  const kinds = new Map<string, number>();
  let name = "";
  let sizeKiB = 0;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      name = header[1] || "";
      continue;
    }
    const size = /^Size:\s+(\d+) kB/.exec(line);
    if (size) {
      sizeKiB = Number(size[1]);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss) continue;
    const kind =
      name === "[heap]"
        ? "malloc main heap ([heap])"
        : name === ""
          ? sizeKiB < 1024
            ? "anonymous, < 1 MiB (V8's pages)"
            : "anonymous, >= 1 MiB (V8's large objects and new space, malloc's mmaps)"
          : name.startsWith("/")
            ? "mapped files (code, libraries, databases)"
            : name;
    kinds.set(kind, (kinds.get(kind) ?? 0) + Number(rss[1]) * 1024);
  }
  return kinds;
}

function report(label: string, bindings: number, baseline?: number): number {
  const mem = process.memoryUsage();
  console.log(
    `\n${label}: ${bindings.toLocaleString("en-US")} bindings, RSS ${mib(mem.rss)}, heap used ${mib(mem.heapUsed)} of ${mib(mem.heapTotal)} committed, external ${mib(mem.external)}` +
      (baseline !== undefined && bindings > 0 ? `, ${((mem.rss - baseline) / bindings).toFixed(0)} bytes/binding` : ""),
  );
  for (const [kind, bytes] of [...rssByMapping()].sort((a, b) => b[1] - a[1]))
    if (bytes >= MiB) console.log(`  ${mib(bytes).padStart(9)}  ${kind}`);
  for (const s of v8.getHeapSpaceStatistics())
    if (s.physical_space_size >= MiB)
      console.log(
        `  V8 ${s.space_name}: ${mib(s.physical_space_size)} committed, ${mib(s.space_used_size)} live, ${mib(s.space_available_size)} free-listed`,
      );
  return mem.rss;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const target = Number(args.find((a) => !a.startsWith("--")) ?? 1_000_000);
  const poll = Number(args.find((a) => a.startsWith("--poll="))?.slice("--poll=".length) ?? 0);
  const batchSize = Number(args.find((a) => a.startsWith("--batch="))?.slice("--batch=".length) ?? 1000);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with node --expose-gc");
  const settle = () => {
    for (let i = 0; i < 4; i++) gc();
  };
  const ownDir = process.env.IDMAP_DATA_DIR ? undefined : mkdtempSync(join(tmpdir(), "idmap-rss-breakdown-"));
  const config = loadConfig({
    CANONICAL_IDENTITY_MAP_ENABLED: "on",
    IDMAP_EMBEDDED_SYNC: "normal",
    IDMAP_LOG_LEVEL: "warn",
    ...process.env,
    ...(ownDir ? { IDMAP_DATA_DIR: ownDir } : {}),
  });
  const log: Logger = { info() {}, debug() {}, warn: console.warn, error: console.error };
  const app = await createApp(config, { logger: log });
  const cache = app.store.cache;
  if (!cache) throw new Error("no binding cache: is CANONICAL_IDENTITY_MAP_ENABLED on?");
  while (!cache.isSynced) await new Promise((r) => setTimeout(r, 100));
  settle();
  const baseline = report("before seeding", cache.size);

  await seedBindings({
    publish: (batch) => app.publish.publish(batch, "rss-breakdown"),
    bindings: () => cache.size,
    target,
    from: 0,
    batchSize,
    progress: (bindings, perSecond) =>
      console.log(
        `seeding: ${bindings.toLocaleString("en-US")} of ${target.toLocaleString("en-US")} bindings (${perSecond} devices/s)`,
      ),
  });
  settle();
  const seeded = report("after publishing", cache.size, baseline);

  let last = seeded;
  for (let t = 10; t <= poll; t += 10) {
    await new Promise((r) => setTimeout(r, 10_000));
    const mem = process.memoryUsage();
    last = mem.rss;
    console.log(
      `idle ${t} s: RSS ${mib(mem.rss)}, V8 heap committed ${mib(mem.heapTotal)} (${mib(mem.heapUsed)} used), ${((mem.rss - baseline) / cache.size).toFixed(0)} bytes/binding`,
    );
  }
  if (poll > 0) report(`after ${poll} s idle (no forced collection)`, cache.size, baseline);
  console.log(
    `\nsummary: ${cache.size.toLocaleString("en-US")} bindings; ${((seeded - baseline) / cache.size).toFixed(0)} bytes/binding right after publishing` +
      (poll > 0 ? `, ${((last - baseline) / cache.size).toFixed(0)} after ${poll} s idle` : ""),
  );
  await app.close();
  if (ownDir) rmSync(ownDir, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
