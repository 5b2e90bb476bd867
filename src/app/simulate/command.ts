import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import cliProgress from "cli-progress";
import { Command, InvalidArgumentError } from "commander";
import { renderChart } from "./chart.js";
import { renderTable } from "./table.js";
import { runSimulation, type SimProgress } from "./simulate.js";
import type { SimReport } from "./report.js";

interface Flags {
  devices: number;
  days: number;
  seed: string;
  url?: string;
  token?: string;
  batch: number;
  json?: boolean;
  out?: string;
  chart?: string;
}

/** `idmap simulate`: a seeded fleet over simulated days against a service, compared with ground truth. */
export function simulateCommand(): Command {
  return new Command("simulate")
    .description(
      "simulate a fleet (DHCP churn, several sources, sweeps, shared MACs) against the service and compare its " +
        "device count, lookups and KV cost with ground truth and the naive partition:ip baseline; " +
        "exit code 2 when a target is missed",
    )
    .option("--devices <n>", "devices in the fleet", positiveInt, 50_000)
    .option("--days <d>", "simulated days", positiveNumber, 7)
    .option("--seed <seed>", "seed of the generator: same seed, same fleet and sightings", "1")
    .option("--url <url>", "a running service (default: one started in-process on embedded storage in a temp dir)")
    .option("--token <token>", "bearer token for --url (a writer)")
    .option("--batch <n>", "updates per publish request", positiveInt, 5000)
    .option("--json", "print the summary as one JSON object on stdout")
    .option("--out <file>", "JSON report file (default: ./data/simulate-<devices>x<days>d-seed<seed>.json)")
    .option("--chart <file>", "SVG chart of the device count over time: truth, baseline, identity-map")
    .action(async (o: Flags) => {
      const progress = progressReporter();
      let report: SimReport;
      try {
        report = await runSimulation({
          devices: o.devices,
          days: o.days,
          seed: o.seed,
          batchSize: o.batch,
          ...(o.url ? { url: o.url } : {}),
          ...(o.token ? { token: o.token } : {}),
          serviceEnv: idmapSettings(process.env),
          onProgress: progress.update,
        });
      } finally {
        progress.stop();
      }
      const out = o.out ?? `data/simulate-${o.devices}x${o.days}d-seed${o.seed}.json`;
      write(out, `${JSON.stringify(report, null, 2)}\n`);
      if (o.chart) write(o.chart, renderChart(report));
      if (o.json) {
        const { series: _series, ...summary } = report;
        process.stdout.write(`${JSON.stringify(summary)}\n`);
      } else {
        console.log(renderTable(report));
        console.log(`\nreport: ${out}${o.chart ? `\nchart: ${o.chart}` : ""}`);
      }
      if (report.targets.some((t) => !t.met)) process.exitCode = 2;
    });
}

/** A bar on a terminal; otherwise a log line every tenth of the run (stderr either way). */
function progressReporter(): { update: (p: SimProgress) => void; stop: () => void } {
  const fields = (p: SimProgress) => ({
    updates: p.updates.toLocaleString("en-US"),
    truth: p.truth.toLocaleString("en-US"),
    baseline: p.baseline.toLocaleString("en-US"),
    idmap: p.identityMap.toLocaleString("en-US"),
    rate: Math.round(p.updates / Math.max(p.elapsedMs / 1000, 0.001)).toLocaleString("en-US"),
  });
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format:
          "simulating [{bar}] {percentage}% | {updates} updates ({rate}/s) | truth {truth}, baseline {baseline}, " +
          "identity-map {idmap} | ETA {eta_formatted}",
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update: (p) => {
        if (!started) {
          bar.start(p.ticks, 0, fields(p));
          started = true;
        }
        bar.update(p.tick, fields(p));
      },
      stop: () => bar.stop(),
    };
  }
  let nextTenth = 1;
  return {
    update: (p) => {
      if (p.tick < (p.ticks * nextTenth) / 10) return;
      nextTenth++;
      const v = fields(p);
      console.error(
        `simulate: ${Math.round((100 * p.tick) / p.ticks)}% (${new Date(p.simMs).toISOString()}), ${v.updates} ` +
          `updates at ${v.rate}/s, ` +
          `devices: truth ${v.truth}, baseline ${v.baseline}, identity-map ${v.idmap}`,
      );
    },
    stop: () => {},
  };
}

/** IDMAP_* settings from the environment, for the in-process service (policy knobs, sync mode). */
function idmapSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[0].startsWith("IDMAP_") && e[1] !== undefined),
  );
}

function write(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number");
  return n;
}
