import { isLive, type Binding, type KeyWrite, type Revision } from "../../domain/binding.js";
import { normalizeUpdate, type DeviceUpdate } from "../../domain/device-update.js";
import { keyId, type IdentityKey } from "../../domain/identity-key.js";
import type { DeviceStore, TombstoneEntry } from "../../ports/device-store.js";
import type { Clock, IdentityKv, Metrics } from "../../ports/index.js";
import { noopMetrics } from "../../ports/metrics.js";
import type { Candidate, Unit } from "./backfill-plan.js";
import { rowFor } from "./backfill-source.js";
import type { TombstoneFile } from "./backfill-tombstones.js";
import type { BindingCache } from "../bindings/binding-cache.js";
import { BindingStore } from "../bindings/binding-store.js";
import type { Logger } from "../logger.js";
import type { PublishResult, PublishService } from "../publish/publish-service.js";

/** What a backfill run has done so far (kept in the checkpoint, so a resumed run reports the whole run). */
export interface Counters {
  tombstones: number;
  aliasTombstones: number;
  skippedInKv: number;
  created: number;
  updated: number;
  unchanged: number;
  conflicts: number;
  failed: number;
}

export const ACTOR = "backfill";

/** What processing a chunk needs: the publisher and its counting store, the relational store, the output. */
export interface ChunkContext {
  readonly publisher: PublishService;
  readonly store: CountingStore;
  readonly devices: DeviceStore;
  /** The run's time: what is too old, what is live. */
  readonly nowMs: number;
  readonly clock: Clock;
  readonly seedKvOnly: boolean;
  readonly emitting: boolean;
  readonly counters: Counters;
  readonly out: TombstoneFile | null;
  readonly deniedMacs: ReadonlySet<string>;
}

interface Emitted {
  readonly unit: Unit;
  readonly candidate: Candidate | undefined;
  readonly deviceId: string;
  readonly mergedInto: string;
}

const deviceKey = (id: string): IdentityKey => ({ kind: "device-id", value: id });

/**
 * One chunk: read what the map says now; publish the seeds; publish the retired ids the map and the
 * relational store do not already show merged; then write the tombstones (file first, then the
 * relational store, so a crash in between only repeats a tombstone on the next run, never loses one).
 */
export async function processChunk(ctx: ChunkContext, units: readonly Unit[]): Promise<void> {
  const { store, counters } = ctx;

  // What the map says before this chunk: the units' keys and every id they may retire.
  const before = new Map<string, Binding | null>();
  await store.load(
    dedupe(
      units.flatMap((u) => [
        u.key,
        ...(u.canonical ? [deviceKey(u.canonical.deviceId)] : []),
        ...u.retire.map((r) => deviceKey(r.candidate.deviceId)),
      ]),
    ),
    before,
    false,
  );
  const ownerBefore = (k: IdentityKey) => {
    const b = before.get(keyId(k));
    return isLive(b, ctx.nowMs) ? b.record.canonicalDeviceId : undefined;
  };
  const alreadyMerged = (u: Unit, id: string, into: string, c: Candidate | undefined) =>
    ownerBefore(u.key) === into && ownerBefore(deviceKey(id)) === into && c?.mergedInto === into;

  // Phase A: the canonical devices.
  const seeds = units.flatMap((u) => u.seeds.map((s) => ({ unit: u, update: s })));
  const seeded = await publish(
    ctx,
    seeds.map((s) => s.update),
  );
  const canonicalOf = new Map<Unit, string>();
  const emitted: Emitted[] = [];
  seeds.forEach((s, i) => {
    const r = seeded[i]!;
    if (r.outcome === "failed") counters.failed++;
    if (!r.canonical_device_id) return;
    if (!canonicalOf.has(s.unit)) canonicalOf.set(s.unit, r.canonical_device_id);
    for (const id of retired(r))
      emitted.push({
        unit: s.unit,
        candidate: s.unit.canonical?.deviceId === id ? s.unit.canonical : undefined,
        deviceId: id,
        mergedInto: r.canonical_device_id,
      });
  });
  // An alias's device is whoever its claimant's key names now (seeded by an earlier unit).
  const aliases = units.filter((u) => u.claimKey);
  if (aliases.length > 0) {
    const now = new Map<string, Binding | null>();
    await store.load(dedupe(aliases.map((u) => u.claimKey!)), now, false);
    for (const u of aliases) {
      const b = now.get(keyId(u.claimKey!));
      if (isLive(b, ctx.nowMs)) canonicalOf.set(u, b.record.canonicalDeviceId);
    }
  }

  // Phase B: the retired ids, unless the map and the relational store already show them merged.
  const retirees: { unit: Unit; candidate: Candidate; update: DeviceUpdate }[] = [];
  if (!ctx.seedKvOnly) {
    for (const u of units) {
      const c = canonicalOf.get(u);
      if (c === undefined) continue;
      for (const r of u.retire) {
        if (alreadyMerged(u, r.candidate.deviceId, c, r.candidate)) counters.skippedInKv++;
        else retirees.push({ unit: u, candidate: r.candidate, update: r.update });
      }
    }
  }
  const published = await publish(
    ctx,
    retirees.map((r) => r.update),
  );
  retirees.forEach((r, i) => {
    const res = published[i]!;
    if (res.outcome === "failed") counters.failed++;
    if (!res.canonical_device_id) return;
    for (const id of retired(res))
      emitted.push({
        unit: r.unit,
        candidate: id === r.candidate.deviceId ? r.candidate : undefined,
        deviceId: id,
        mergedInto: res.canonical_device_id,
      });
  });

  // Tombstones: a seed's own retired ids may already be merged everywhere (a rerun); count those.
  const tombstones: Emitted[] = [];
  const seen = new Set<string>();
  for (const e of emitted) {
    if (seen.has(e.deviceId)) continue;
    seen.add(e.deviceId);
    if (
      e.unit.seeds.length > 0 &&
      e.candidate === e.unit.canonical &&
      alreadyMerged(e.unit, e.deviceId, e.mergedInto, e.candidate)
    ) {
      counters.skippedInKv++;
      continue;
    }
    if (ctx.seedKvOnly) continue;
    tombstones.push(e);
  }
  counters.tombstones += tombstones.length;
  counters.aliasTombstones += tombstones.filter((t) => t.unit.phase === 1).length;
  if (!ctx.emitting) return;

  const at = ctx.clock.nowMs();
  await ctx.out?.append(
    tombstones.map((t) => ({
      device_id: t.deviceId,
      merged_into: t.mergedInto,
      identity_key: { kind: t.unit.key.kind, value: t.unit.key.value },
      partition: t.candidate?.partition ?? t.unit.partition,
      ip: t.candidate?.ip ?? "",
      emitted_at: at,
    })),
  );
  // Ids only the --from file knows get rows, so the relational store knows what the map knows.
  const rows = [
    ...units.flatMap((u) => (u.canonical && !u.canonical.inStore ? [rowFor(u.canonical, null)] : [])),
    ...tombstones.filter((t) => t.candidate && !t.candidate.inStore).map((t) => rowFor(t.candidate!, t.mergedInto)),
  ];
  if (rows.length > 0) await ctx.devices.upsertDevices(rows);
  const entries: TombstoneEntry[] = tombstones.map((t) => ({
    deviceId: t.deviceId,
    mergedInto: t.mergedInto,
    key: t.unit.key,
    atMs: at,
    actor: ACTOR,
  }));
  await ctx.devices.recordTombstones(entries);
}

/** Publishes through the protocol and counts bindings: created, updated (or removed), and unchanged. */
async function publish(ctx: ChunkContext, updates: readonly DeviceUpdate[]): Promise<PublishResult[]> {
  if (updates.length === 0) return [];
  ctx.store.startBatch();
  const results = await ctx.publisher.publish(updates, ACTOR);
  const touched = new Set<string>();
  updates.forEach((u, i) => {
    for (const k of normalizeUpdate(u, { nowMs: ctx.nowMs, deniedMacs: ctx.deniedMacs }).keys)
      touched.add(ctx.store.path(k));
    const c = results[i]!.canonical_device_id;
    if (c) touched.add(ctx.store.path(deviceKey(c)));
  });
  const w = ctx.store.endBatch();
  ctx.counters.created += w.created;
  ctx.counters.updated += w.updated;
  for (const p of touched) if (!w.paths.has(p)) ctx.counters.unchanged++;
  return results;
}

function retired(r: PublishResult): string[] {
  const out: string[] = [];
  if (r.tombstone && r.tombstone.device_id !== r.tombstone.merged_into) out.push(r.tombstone.device_id);
  for (const id of r.merged_device_ids ?? []) if (!out.includes(id)) out.push(id);
  return out;
}

function dedupe(keys: readonly IdentityKey[]): IdentityKey[] {
  const m = new Map(keys.map((k) => [keyId(k), k]));
  return [...m.values()];
}

/** A BindingStore that counts the writes it applies, per publish batch. */
export class CountingStore extends BindingStore {
  private created = 0;
  private updated = 0;
  private paths = new Set<string>();

  constructor(kv: IdentityKv, namespace: string, cache: BindingCache) {
    super(kv, namespace, cache, noopMetrics);
  }

  override async apply(w: KeyWrite, weakTtlMs: number): Promise<Revision | null> {
    const r = await super.apply(w, weakTtlMs);
    if (w.op === "create") this.created++;
    else this.updated++;
    this.paths.add(this.path(w.key));
    return r;
  }

  startBatch(): void {
    this.created = 0;
    this.updated = 0;
    this.paths = new Set();
  }

  endBatch(): { created: number; updated: number; paths: ReadonlySet<string> } {
    return { created: this.created, updated: this.updated, paths: this.paths };
  }
}

/**
 * The relational store as the backfill's publisher sees it: the audit trail is kept (except in a dry
 * run), but device rows are not rewritten from the sightings (they are the history being read; the
 * publisher would replace their metadata and first sighting). Tombstones are recorded separately.
 */
export function backfillDevices(devices: DeviceStore, dryRun: boolean): DeviceStore {
  return new Proxy(devices, {
    get(target, prop) {
      if (prop === "upsertDevices") return async () => {};
      if (prop === "appendAudit" && dryRun) return async () => {};
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** Metrics that count refused rebinds, CAS conflicts and exhausted retries for the summary. */
export function countingConflicts(metrics: Metrics, count: () => void): Metrics {
  return new Proxy(metrics, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (prop === "conflict") {
        return (...args: unknown[]) => {
          count();
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * Per-change lines are not repeated for a bulk seeding (every change is still in the relational audit
 * trail, actor `backfill`); warnings and errors pass.
 */
export function quiet(log: Logger): Logger {
  return { info() {}, debug() {}, warn: (o, m) => log.warn(o, m), error: (o, m) => log.error(o, m) };
}
