/**
 * A deployed start's first answer (issue 13: "a fresh start with 1 000 000 bindings answering lookups
 * within 3 s"): the time from spawning `node dist/app/cli.js serve` (what `npm start` runs) on the
 * embedded defaults to its first 200 for a lookup, on a data directory holding N bindings, and on an
 * empty one as the baseline, alternated in the same run.
 *
 *   npm run bench:start                          # 1 000 000 bindings, 3 rounds: about 3 minutes
 *   npm run bench:start -- --bindings=100000 --rounds=2
 *
 * The map is seeded in this process (200 000 devices of five bindings each for 1M), not timed. The
 * compiled service is built first if a source is newer (scripts/build-if-stale.mjs). Results: a
 * summary on stdout and JSON in bench/results/start-<date>.json.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/app/config.js";
import { createApp } from "../src/app/container.js";
import { silentLogger } from "../src/app/logger.js";
import { RESULTS_DIR } from "./lib/bench.js";
import { machine } from "./lib/util.js";
import { batches } from "./lib/workload.js";

const ROOT = join(import.meta.dirname, "..");
const TARGET_MS = 3_000;

function option(name: string, dflt: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  if (!a) return dflt;
  const n = Number(a.slice(name.length + 3));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name}: expected a positive integer, got ${a}`);
  return n;
}

async function seed(dataDir: string, bindings: number): Promise<number> {
  // Seeding is not measured: no fsync per commit (the timed starts read the same files either way).
  const config = loadConfig({
    ...process.env,
    IDMAP_EMBEDDED_SYNC: "normal",
    IDMAP_DATA_DIR: dataDir,
    IDMAP_AUTH_TOKENS: "",
    IDMAP_LOG_LEVEL: "warn",
  });
  const app = await createApp(config, { logger: silentLogger });
  try {
    const devices = Math.ceil(bindings / 5);
    let done = 0;
    let last = performance.now();
    for (const batch of batches(0, devices, 0, 2_000)) {
      await app.publish.publish(batch, "bench-seed");
      done += batch.length;
      if (performance.now() - last > 5_000) {
        last = performance.now();
        console.log(`  seeding: ${done.toLocaleString("en")} of ${devices.toLocaleString("en")} devices`);
      }
    }
    return app.store.cache?.size ?? 0;
  } finally {
    await app.close();
  }
}

/** Spawns the deployed service on `dataDir` and times its first answered lookup. */
async function timedStart(dataDir: string, port: number): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(ROOT, "dist/app/cli.js"), "serve"], {
    env: {
      ...process.env,
      IDMAP_DATA_DIR: dataDir,
      IDMAP_LOG_LEVEL: "warn",
      IDMAP_REST_PORT: String(port),
      IDMAP_GRPC_PORT: String(port + 1),
      IDMAP_AUTH_TOKENS: "",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    while (performance.now() - t0 < 60_000) {
      if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}`);
      // A 404 (empty map) is an answer too: the service looked the key up.
      const r = await fetch(`http://127.0.0.1:${port}/v1/canonical-devices/lookup?armis_id=A-0`).catch(() => null);
      if (r && (r.status === 200 || r.status === 404)) return performance.now() - t0;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error("no answer within 60 s");
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
}

async function main(): Promise<void> {
  const bindings = option("bindings", 1_000_000);
  const rounds = option("rounds", 3);
  execFileSync(process.execPath, [join(ROOT, "scripts/build-if-stale.mjs")], { stdio: "inherit" });
  const dir = mkdtempSync(join(tmpdir(), "idmap-start-bench-"));
  try {
    const full = join(dir, "full");
    const empty = join(dir, "empty");
    console.log(`start benchmark: seeding ${bindings.toLocaleString("en")} bindings in ${full}`);
    const seeded = await seed(full, bindings);
    await seed(empty, 1);
    const times = { full: [] as number[], empty: [] as number[] };
    const loads: number[] = [];
    for (let i = 0; i < rounds; i++) {
      loads.push(loadavg()[0]!);
      times.empty.push(await timedStart(empty, 18_470));
      times.full.push(await timedStart(full, 18_470));
      console.log(
        `  round ${i + 1}/${rounds}: empty ${Math.round(times.empty.at(-1)!)} ms, ` +
          `${seeded.toLocaleString("en")} bindings ${Math.round(times.full.at(-1)!)} ms`,
      );
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const result = {
      date: new Date().toISOString(),
      machine: machine(),
      load: { min: Math.min(...loads), max: Math.max(...loads) },
      bindings: seeded,
      firstAnswerMs: { full: times.full, empty: times.empty },
      medianMs: { full: median(times.full), empty: median(times.empty) },
      ratio: median(times.full) / median(times.empty),
      targetMs: TARGET_MS,
      met: median(times.full) <= TARGET_MS,
    };
    console.log(
      `\nfirst answer after spawning \`node dist/app/cli.js serve\` (median of ${rounds}, load ` +
        `${result.load.min.toFixed(1)}-${result.load.max.toFixed(1)}):\n` +
        `  empty map            ${Math.round(result.medianMs.empty)} ms\n` +
        `  ${seeded.toLocaleString("en")} bindings   ${Math.round(result.medianMs.full)} ms ` +
        `(x${result.ratio.toFixed(2)} the empty map's)\n` +
        `  target <= ${TARGET_MS} ms: ${result.met ? "met" : "MISSED"}`,
    );
    mkdirSync(RESULTS_DIR, { recursive: true });
    const out = join(RESULTS_DIR, `start-${result.date.slice(0, 16).replace(":", "-")}.json`);
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`results: ${out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
