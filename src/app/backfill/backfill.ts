import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { DEFAULT_BACKOFF } from "../../domain/backoff.js";
import { ConfigError } from "../../domain/errors.js";
import type { DeviceStore } from "../../ports/device-store.js";
import type { IdentityKv } from "../../ports/index.js";
import { noopMetrics } from "../../ports/metrics.js";
import {
  backfillDevices,
  countingConflicts,
  CountingStore,
  processChunk,
  quiet,
  type ChunkContext,
  type Counters,
} from "./backfill-chunk.js";
import { RateLimitedKv, ScratchKv, TokenBucket } from "./backfill-kv.js";
import { compareUnits, planBackfill } from "./backfill-plan.js";
import { readCandidates } from "./backfill-source.js";
import { defaultTombstonesPath, TombstoneFile } from "./backfill-tombstones.js";
import { startCachedStore } from "../bindings/binding-store.js";
import type { App } from "../container.js";
import { PublishService } from "../publish/publish-service.js";

export interface BackfillOptions {
  /** Seed the map, emit no tombstones (and publish no retired ids). */
  readonly seedKvOnly?: boolean;
  /** Decide everything on a scratch copy of the map; write nothing anywhere. */
  readonly dryRun?: boolean;
  /** Only these partitions (of each group's canonical device); all of them, one after another, by default. */
  readonly partitions?: readonly string[];
  /** Cap on KV operations per second (each key read or written is one). */
  readonly rate?: number;
  /** Units per chunk, and rows per page when reading the relational store. */
  readonly chunk?: number;
  /** Continue after the last chunk an interrupted run finished. */
  readonly resume?: boolean;
  /** A JSON Lines file of DeviceUpdate objects (with timestamps) to read besides the relational rows. */
  readonly from?: string;
  /** Where tombstones go as JSON Lines; default `<data dir>/backfill/tombstones-<start>.jsonl`. */
  readonly tombstonesOut?: string;
  /** Stops after the chunk in progress; the checkpoint lets `resume` continue. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: BackfillProgress) => void;
}

/** The summary; with `--json` exactly these keys. */
export interface BackfillSummary {
  readonly candidate_rows: number;
  readonly duplicate_groups: number;
  readonly tombstones: number;
  readonly skipped_in_kv: number;
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly conflicts: number;
  readonly elapsed_ms: number;
}

export interface BackfillReport {
  readonly summary: BackfillSummary;
  readonly dryRun: boolean;
  readonly seedKvOnly: boolean;
  readonly interrupted: boolean;
  readonly resumed: boolean;
  readonly tombstonesOut: string | null;
  readonly aliasTombstones: number;
  readonly units: number;
  readonly storeRows: number;
  readonly fileLines: number;
  readonly fileSkipped: number;
  readonly tooOld: number;
  readonly orphans: number;
  /** Updates whose CAS retries ran out; their units are left for the next run. */
  readonly failed: number;
}

export interface BackfillProgress {
  readonly done: number;
  readonly total: number;
  readonly partition: string;
  readonly counters: Readonly<Counters>;
}

interface Checkpoint {
  readonly version: 1;
  readonly fingerprint: string;
  readonly position: { partition: string; phase: 0 | 1 | 2; id: string };
  readonly counters: Counters;
  readonly elapsedMs: number;
  readonly tombstonesOut: string | null;
}

/**
 * What the backfill takes from the app. Not its metrics: the backfill runs in the CLI, which nobody
 * scrapes, so it reports through its summary and logs instead of paying for counters per KV call.
 */
export type BackfillDeps = Pick<App, "config" | "log" | "clock" | "kv" | "devices" | "policy">;

const JOB = "backfill";

/**
 * `idmap backfill` (the reference's backfill, done our way): reads the history, groups it by strong
 * identity, picks each group's canonical device (backfill-plan.ts), and publishes the canonical
 * sightings and then the retired ids through the publish protocol itself, so the map holds exactly
 * what live traffic would have made of the same sightings. A retired id is a tombstone unless the map
 * and the relational store already say so. Always on the KV (app.kv), whatever the flag says.
 */
export async function runBackfill(deps: BackfillDeps, options: BackfillOptions = {}): Promise<BackfillReport> {
  const started = performance.now();
  const { config, log, clock, devices } = deps;
  const dryRun = !!options.dryRun;
  const seedKvOnly = !!options.seedKvOnly;
  const chunk = options.chunk ?? 500;
  if (!Number.isInteger(chunk) || chunk < 1)
    throw new ConfigError("--chunk", `expected a positive integer, got ${chunk}`);
  if (options.rate !== undefined && !(options.rate > 0))
    throw new ConfigError("--rate", `expected a positive number, got ${options.rate}`);
  const nowMs = clock.nowMs();

  const { candidates, counts } = await readCandidates(devices, {
    ...(options.from ? { from: options.from } : {}),
    pageSize: Math.max(chunk, 500),
    nowMs,
    deniedMacs: config.deniedMacs,
  });
  const partitions = [...new Set(options.partitions ?? [])].sort();
  const plan = planBackfill(candidates, { nowMs, weakKeyTtlMs: deps.policy.weakKeyTtlMs, partitions, seedKvOnly });
  log.info(
    {
      candidates: candidates.length,
      units: plan.units.length,
      partitions: plan.partitions,
      duplicate_groups: plan.duplicateGroups,
      dry_run: dryRun,
      seed_kv_only: seedKvOnly,
    },
    "backfill planned",
  );

  const fingerprint = JSON.stringify({
    namespace: config.namespace,
    partitions,
    seedKvOnly,
    chunk,
    from: options.from ? await fileIdentity(options.from) : null,
  });
  const saved = dryRun ? null : await loadCheckpoint(devices);
  let resumeFrom: Checkpoint | null = null;
  if (options.resume && dryRun) log.warn({}, "--resume is ignored by a dry run, which keeps no checkpoint");
  else if (options.resume && saved) {
    if (saved.fingerprint !== fingerprint) {
      throw new ConfigError(
        "--resume",
        "the checkpoint was made with other options (namespace, --partition, --seed-kv-only, --chunk or --from); " +
          "rerun with those, or without --resume to start over",
      );
    }
    resumeFrom = saved;
  } else if (options.resume) log.info({}, "no checkpoint to resume from; starting from the beginning");
  else if (saved)
    log.warn(
      { position: saved.position },
      "discarding the checkpoint of an interrupted run (use --resume to continue it)",
    );

  const counters: Counters = resumeFrom
    ? { ...resumeFrom.counters }
    : {
        tombstones: 0,
        aliasTombstones: 0,
        skippedInKv: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
        conflicts: 0,
        failed: 0,
      };
  const elapsedBefore = resumeFrom?.elapsedMs ?? 0;
  const emitting = !dryRun && !seedKvOnly;
  const tombstonesOut = emitting
    ? (options.tombstonesOut ?? resumeFrom?.tombstonesOut ?? defaultTombstonesPath(config.dataDir, nowMs))
    : null;
  const out = tombstonesOut ? await TombstoneFile.open(tombstonesOut, !!resumeFrom) : null;

  // The KV the backfill uses: the app's, rate-limited, and for a dry run a scratch copy over it.
  let kv: IdentityKv = deps.kv;
  if (options.rate !== undefined) kv = new RateLimitedKv(kv, new TokenBucket(options.rate));
  if (dryRun) kv = new ScratchKv(kv);
  // A watch-coherent cache of the namespace, as the service keeps: decisions read it instead of the KV,
  // and a stale entry only costs a CAS conflict and a fresh read (the protocol's retry).
  const store = await startCachedStore(kv, config.namespace, quiet(log), (cache) => {
    return new CountingStore(kv, config.namespace, cache);
  });
  const publisher = new PublishService({
    store,
    devices: backfillDevices(devices, dryRun),
    clock,
    metrics: countingConflicts(noopMetrics, () => counters.conflicts++),
    log: quiet(log),
    policy: deps.policy,
    backoff: DEFAULT_BACKOFF,
    deniedMacs: config.deniedMacs,
  });
  const run: ChunkContext = {
    publisher,
    store,
    devices,
    nowMs,
    clock,
    seedKvOnly,
    emitting,
    counters,
    out,
    deniedMacs: config.deniedMacs,
  };

  const todo = resumeFrom ? plan.units.filter((u) => compareUnits(u, resumeFrom.position) > 0) : plan.units;
  const total = plan.units.length;
  let done = total - todo.length;
  let interrupted = false;
  options.onProgress?.({ done, total, partition: todo[0]?.partition ?? "", counters });
  try {
    for (let i = 0; i < todo.length; i += chunk) {
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      const units = todo.slice(i, i + chunk);
      await processChunk(run, units);
      done += units.length;
      const last = units[units.length - 1]!;
      if (!dryRun) {
        const cp: Checkpoint = {
          version: 1,
          fingerprint,
          position: { partition: last.partition, phase: last.phase, id: last.id },
          counters,
          elapsedMs: elapsedBefore + Math.round(performance.now() - started),
          tombstonesOut,
        };
        await devices.putJobState(JOB, JSON.stringify(cp), clock.nowMs());
      }
      options.onProgress?.({ done, total, partition: last.partition, counters });
    }
    if (!interrupted && !dryRun) await devices.putJobState(JOB, null, clock.nowMs());
  } finally {
    await store.stop();
    await out?.close();
  }

  const summary: BackfillSummary = {
    candidate_rows: plan.candidateRows,
    duplicate_groups: plan.duplicateGroups,
    tombstones: counters.tombstones,
    skipped_in_kv: counters.skippedInKv,
    created: counters.created,
    updated: counters.updated,
    unchanged: counters.unchanged,
    conflicts: counters.conflicts,
    elapsed_ms: elapsedBefore + Math.round(performance.now() - started),
  };
  const report: BackfillReport = {
    summary,
    dryRun,
    seedKvOnly,
    interrupted,
    resumed: !!resumeFrom,
    tombstonesOut,
    aliasTombstones: counters.aliasTombstones,
    units: total,
    storeRows: counts.storeRows,
    fileLines: counts.fileLines,
    fileSkipped: counts.fileSkipped,
    tooOld: plan.tooOld,
    orphans: plan.orphans,
    failed: counters.failed,
  };
  log.info(
    { ...summary, dry_run: dryRun, seed_kv_only: seedKvOnly, interrupted, tombstones_out: tombstonesOut },
    interrupted ? "backfill interrupted" : "backfill finished",
  );
  return report;
}

async function loadCheckpoint(devices: DeviceStore): Promise<Checkpoint | null> {
  const raw = await devices.getJobState(JOB);
  if (!raw) return null;
  try {
    const cp = JSON.parse(raw) as Checkpoint;
    return cp.version === 1 ? cp : null;
  } catch {
    return null;
  }
}

async function fileIdentity(path: string): Promise<{ path: string; size: number; mtimeMs: number }> {
  const s = await stat(path);
  return { path: resolve(path), size: s.size, mtimeMs: Math.trunc(s.mtimeMs) };
}
