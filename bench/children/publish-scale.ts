/**
 * Publish CPU at several map sizes, in-process (no HTTP, no JSON): the service's own cost per update
 * as the map grows. The app runs in this process as `idmap serve` builds it (no front-end listening);
 * devices are published through the publish service until the map holds each target count of
 * bindings, then three phases of `updates` devices are timed at that size: new devices, the same
 * devices after a DHCP move, and the move again (unchanged), in `rounds` rounds (medians reported). CPU is this process's (user + system),
 * so on embedded it includes SQLite's work; on memory the KV is a Map in the same process.
 *
 * Run by the bench (bench/lib/scale.ts) as a child, or by hand for a profile:
 *   IDMAP_KV_BACKEND=memory node --import tsx --cpu-prof --cpu-prof-dir=/tmp/p bench/children/publish-scale.ts 100000
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/app/config.js";
import { createApp } from "../../src/app/container.js";
import type { Logger } from "../../src/app/logger.js";
import { median } from "../lib/util.js";
import { batches, seedBindings } from "../lib/workload.js";

export interface ScalePhase {
  readonly phase: "new" | "move" | "repeat";
  readonly updates: number;
  /** Medians of the rounds. */
  readonly cpuUsPerUpdate: number;
  readonly updatesPerSecond: number;
  readonly cpuRounds: readonly number[];
  /**
   * Of `cpuUsPerUpdate`, the part on the main thread (medians of the rounds); the rest ran on other
   * threads, mostly V8's garbage-collection helpers, which a profile of the main thread never shows.
   * Absent where /proc is not (Linux only).
   */
  readonly mainThreadCpuUsPerUpdate?: number;
  readonly outcomes: Record<string, number>;
}

export interface ScaleSample {
  readonly target: number;
  readonly bindings: number;
  readonly seedSeconds: number;
  readonly phases: readonly ScalePhase[];
}

interface Start {
  type: "start";
  targets: number[];
  updates: number;
  batchSize: number;
  rounds: number;
}

const send = (m: object) => (process.send ? process.send(m) : console.log(JSON.stringify(m)));

const EXPECTED = { new: "created", move: "updated", repeat: "unchanged" } as const;

/** This process's main thread's CPU time in µs (utime + stime of its task), or undefined without /proc. */
function mainThreadCpuUs(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of stat(5) (utime, stime), in clock ticks: 100 a second on Linux.
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
}

async function run(m: Start): Promise<void> {
  const own = process.env.IDMAP_DATA_DIR ? undefined : mkdtempSync(join(tmpdir(), "idmap-bench-scale-"));
  const config = loadConfig({
    CANONICAL_IDENTITY_MAP_ENABLED: "on",
    IDMAP_LOG_LEVEL: "warn",
    IDMAP_AUTH_TOKENS: "",
    ...process.env,
    ...(own ? { IDMAP_DATA_DIR: own } : {}),
  });
  const forward = (level: string) => (obj: object, msg: string) => send({ type: "log", level, msg, ...obj });
  const log: Logger = { info() {}, debug() {}, warn: forward("warn"), error: forward("error") };
  const app = await createApp(config, { logger: log });
  try {
    const bindings = () => app.store.cache?.size ?? 0;
    let device = 0;
    // Measured devices come from a range far above the seeded ones, so seeding never touches them.
    let measured = 8_000_000;
    for (const target of m.targets) {
      const t0 = performance.now();
      device = await seedBindings({
        publish: (batch) => app.publish.publish(batch, "bench-seed"),
        bindings,
        target,
        from: device,
        batchSize: m.batchSize,
        progress: (n) => send({ type: "progress", bindings: n, target }),
      });
      const seedSeconds = (performance.now() - t0) / 1000;
      // Rounds of the three phases on fresh devices, medians kept: a major collection of a big heap
      // lands in one round, not in the figure.
      type Rounds = { cpu: number[]; main: number[]; rate: number[]; outcomes: Record<string, number> };
      const rounds: Record<ScalePhase["phase"], Rounds> = {
        new: { cpu: [], main: [], rate: [], outcomes: {} },
        move: { cpu: [], main: [], rate: [], outcomes: {} },
        repeat: { cpu: [], main: [], rate: [], outcomes: {} },
      };
      for (let round = 0; round < m.rounds; round++) {
        for (const phase of ["new", "move", "repeat"] as const) {
          const work = batches(measured, m.updates, phase === "new" ? 0 : 1, m.batchSize);
          const outcomes: Record<string, number> = {};
          const cpu0 = process.cpuUsage();
          const main0 = mainThreadCpuUs();
          const w0 = performance.now();
          for (const b of work) {
            for (const r of await app.publish.publish(b, "bench")) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
          }
          const wall = performance.now() - w0;
          const cpu = process.cpuUsage(cpu0);
          const main1 = mainThreadCpuUs();
          if ((outcomes[EXPECTED[phase]] ?? 0) !== m.updates)
            throw new Error(`${phase} at ${target}: unexpected outcomes ${JSON.stringify(outcomes)}`);
          const r = rounds[phase];
          r.cpu.push((cpu.user + cpu.system) / m.updates);
          if (main0 !== undefined && main1 !== undefined) r.main.push((main1 - main0) / m.updates);
          r.rate.push(m.updates / (wall / 1000));
          for (const [k, v] of Object.entries(outcomes)) r.outcomes[k] = (r.outcomes[k] ?? 0) + v;
        }
        measured += m.updates;
      }
      const phases: ScalePhase[] = (["new", "move", "repeat"] as const).map((phase) => ({
        phase,
        updates: m.updates * m.rounds,
        cpuUsPerUpdate: median(rounds[phase].cpu),
        updatesPerSecond: median(rounds[phase].rate),
        cpuRounds: rounds[phase].cpu,
        ...(rounds[phase].main.length > 0 ? { mainThreadCpuUsPerUpdate: median(rounds[phase].main) } : {}),
        outcomes: rounds[phase].outcomes,
      }));
      send({ type: "sample", sample: { target, bindings: bindings(), seedSeconds, phases } satisfies ScaleSample });
    }
  } finally {
    await app.close();
    if (own) rmSync(own, { recursive: true, force: true });
  }
}

const start = (m: Start) =>
  run(m).then(
    () => process.exit(0),
    (e: unknown) => {
      send({ type: "error", error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      process.exit(1);
    },
  );

if (process.send) process.once("message", start);
else {
  const targets = (process.argv[2] ?? "10000").split(",").map(Number);
  const updates = Number(process.argv[3] ?? 3000);
  void start({ type: "start", targets, updates, batchSize: 1000, rounds: Number(process.argv[4] ?? 3) });
}
