import cliProgress from "cli-progress";
import { type Command, InvalidArgumentError } from "commander";
import pino from "pino";
import { runBackfill, type BackfillOptions, type BackfillProgress, type BackfillReport } from "./backfill.js";
import type { Config } from "../config.js";
import { createApp } from "../container.js";
import type { Logger } from "../logger.js";

interface CliOptions {
  seedKvOnly?: boolean;
  dryRun?: boolean;
  partition: string[];
  rate?: number;
  chunk: number;
  resume?: boolean;
  from?: string;
  tombstonesOut?: string;
  json?: boolean;
}

/** `idmap backfill`: seeds the map from history (src/app/backfill.ts); progress on stderr, the summary on stdout. */
export function registerBackfill(program: Command, config: () => Config): void {
  program
    .command("backfill")
    .description("seed the identity map from the relational history (and --from), and tombstone duplicates")
    .option("--seed-kv-only", "seed the map; emit no tombstones")
    .option("--dry-run", "decide everything, count it, write nothing")
    .option(
      "--partition <name>",
      "only this partition (repeatable; default: every partition, one after another)",
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option(
      "--rate <ops>",
      "cap on KV operations per second (each key read or written counts)",
      positive("--rate", false),
    )
    .option("--chunk <n>", "units of work per chunk (the checkpoint step)", positive("--chunk", true), 500)
    .option("--resume", "continue an interrupted run from its checkpoint")
    .option("--from <file>", "also read a JSON Lines file of device updates (each with its timestamp)")
    .option(
      "--tombstones-out <file>",
      "where tombstones are written as JSON Lines (default: <data dir>/backfill/tombstones-<time>.jsonl)",
    )
    .option("--json", "print the summary as one JSON object")
    .action(async (o: CliOptions) => {
      const log = stderrLogger(config().logLevel);
      const app = await createApp(config(), { logger: log });
      const stop = new AbortController();
      const onSignal = () => {
        if (stop.signal.aborted) process.exit(130);
        log.warn(
          {},
          "stopping after the chunk in progress; run again with --resume to continue (Ctrl-C again to quit now)",
        );
        stop.abort();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      const progress = progressReporter(log);
      try {
        const options: BackfillOptions = {
          ...(o.seedKvOnly ? { seedKvOnly: true } : {}),
          ...(o.dryRun ? { dryRun: true } : {}),
          ...(o.partition.length > 0 ? { partitions: o.partition } : {}),
          ...(o.rate !== undefined ? { rate: o.rate } : {}),
          chunk: o.chunk,
          ...(o.resume ? { resume: true } : {}),
          ...(o.from ? { from: o.from } : {}),
          ...(o.tombstonesOut ? { tombstonesOut: o.tombstonesOut } : {}),
          signal: stop.signal,
          onProgress: progress.update,
        };
        const report = await runBackfill(app, options).finally(progress.stop);
        console.log(o.json ? JSON.stringify(report.summary) : formatReport(report));
        if (report.interrupted) process.exitCode = 130;
        else if (report.failed > 0) process.exitCode = 1;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        await app.close();
      }
    });
}

function positive(flag: string, integer: boolean) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
      throw new InvalidArgumentError(`${flag}: expected a positive ${integer ? "integer" : "number"}`);
    return n;
  };
}

/** Logs go to stderr so that stdout carries only the summary (one JSON object with --json). */
function stderrLogger(level: string): pino.Logger {
  return pino(
    { level, base: { service: "identity-map", command: "backfill" } },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A progress bar on a terminal; otherwise a log line every ten seconds. */
function progressReporter(log: Logger): { update: (p: BackfillProgress) => void; stop: () => void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format:
          "backfill [{bar}] {percentage}% | {value}/{total} units | {partition} | tombstones {tombstones} | ETA " +
          "{eta_formatted}",
        stream: process.stderr,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(p) {
        const payload = { partition: p.partition || "(no partition)", tombstones: p.counters.tombstones };
        if (!started) {
          bar.start(p.total, p.done, payload);
          started = true;
        } else bar.update(p.done, payload);
      },
      stop: () => (started ? bar.stop() : undefined),
    };
  }
  let last = 0;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 10_000 && p.done < p.total) return;
      last = now;
      const c = p.counters;
      log.info(
        {
          done: p.done,
          total: p.total,
          partition: p.partition,
          tombstones: c.tombstones,
          created: c.created,
          updated: c.updated,
          conflicts: c.conflicts,
        },
        "backfill progress",
      );
    },
    stop() {},
  };
}

/** The readable summary. */
export function formatReport(r: BackfillReport): string {
  const s = r.summary;
  const w = (label: string, value: number | string, note = "") =>
    `  ${label.padEnd(26)}${String(value).padStart(10)}${note ? `  ${note}` : ""}`;
  const ending = r.dryRun
    ? "dry run finished: nothing was written"
    : r.seedKvOnly
      ? "finished (seed only: no tombstones)"
      : "finished";
  const title = r.interrupted
    ? `backfill interrupted (run again with --resume to continue)`
    : `backfill ${ending}${r.resumed ? " (resumed)" : ""}`;
  const lines = [
    title,
    w(
      "candidate rows",
      s.candidate_rows,
      `${r.storeRows} relational rows${r.fileLines ? `, ${r.fileLines} file lines (${r.fileSkipped} skipped)` : ""}`,
    ),
    w("duplicate groups", s.duplicate_groups),
    w(
      r.dryRun ? "tombstones (would emit)" : "tombstones emitted",
      s.tombstones,
      [
        r.aliasTombstones ? `${r.aliasTombstones} IP aliases` : "",
        r.tombstonesOut && !r.dryRun ? `-> ${r.tombstonesOut}` : "",
      ]
        .filter(Boolean)
        .join(" "),
    ),
    w("skipped, already in KV", s.skipped_in_kv),
    w(r.dryRun ? "bindings to create" : "bindings created", s.created),
    w(r.dryRun ? "bindings to update" : "bindings updated", s.updated),
    w("bindings unchanged", s.unchanged),
    w("conflicts", s.conflicts, r.failed ? `${r.failed} updates ran out of retries: run again to finish them` : ""),
  ];
  if (r.tooOld) lines.push(w("address-only, too old", r.tooOld, "not seeded: their bindings would be born expired"));
  if (r.orphans) lines.push(w("merged into unknown ids", r.orphans, "left alone"));
  lines.push(w("elapsed", `${(s.elapsed_ms / 1000).toFixed(1)} s`));
  return lines.join("\n");
}
