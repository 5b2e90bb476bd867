import { randomBytes } from "node:crypto";
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from "../../domain/backoff.js";
import type { Binding, Revision } from "../../domain/binding.js";
import { normalizeUpdate, type DeviceUpdate, type NormalizedUpdate } from "../../domain/device-update.js";
import { IdentityMapError, RetryExhausted, RevisionConflict, WriteOutcomeUnknown } from "../../domain/errors.js";
import { keyId, type IdentityKey } from "../../domain/identity-key.js";
import type { Resolved } from "../../domain/resolution.js";
import { DeviceRecorder, recordedDecision, type RecordedDecision } from "./device-recorder.js";
import { IntentJournal, type JournalBatch } from "./intent-journal.js";
import { abandon, EarlierWrites, reconcile, type AuditedChange, type ReconcileDeps } from "./earlier-writes.js";
import type { PublishResult, ResolveResult } from "../../ports/identity-service.js";
import { checkBatchSize, type ServiceDeps } from "../service-deps.js";
import { groupUpdates, runGroups } from "./publish-groups.js";

export type { PublishResult, ResolveResult };

export interface PublishDeps extends ServiceDeps {
  readonly backoff?: BackoffPolicy;
  readonly deniedMacs?: ReadonlySet<string>;
  /** Timestamps further in the future than this are refused (IDMAP_MAX_CLOCK_SKEW). */
  readonly maxClockSkewMs?: number;
  /** Groups of related updates resolved at once. */
  readonly concurrency?: number;
  /** Optional second opinion (shadow mode): decisions computed on it, never written. */
  readonly shadow?: ShadowComparator;
  /** Device rows the recorder remembers, to skip rewriting them (a bounded cache's size; undefined: all). */
  readonly recorderMaxRows?: number;
}

export interface ShadowComparator {
  compare(update: NormalizedUpdate, primary: Resolved | null): Promise<void>;
}

interface Applied {
  readonly result: PublishResult;
  readonly decision?: RecordedDecision;
  readonly update: NormalizedUpdate;
  readonly revisions: ReadonlyMap<string, Revision | null>;
  /** CAS conflicts met on the way, and the key of the last one (for the log, never a label). */
  readonly casConflicts?: { readonly count: number; readonly key: string };
  /** Binding changes made by attempts before the one that decided, and their undoing (see reconcile). */
  readonly earlierChanges?: readonly AuditedChange[];
}

/** An update that met this many CAS conflicts is logged even when it succeeded: contention is building. */
const CONFLICT_WARN_THRESHOLD = 3;

/**
 * Publish and resolve. Each update: read the bindings of its keys (the cache
 * first), decide, apply the writes step by step, each conditional on its revision; on a conflict,
 * re-read from the store and decide again with backoff until the budget runs out. Updates that share
 * a key or a device run one after another; unrelated ones run side by side.
 */
export class PublishService {
  private readonly backoff: BackoffPolicy;
  private readonly instance = randomBytes(6).toString("hex");
  private seq = 0;
  private readonly recorder: DeviceRecorder;
  private readonly journal: IntentJournal;

  constructor(private readonly deps: PublishDeps) {
    this.backoff = deps.backoff ?? DEFAULT_BACKOFF;
    this.recorder = new DeviceRecorder(deps.devices, deps.log, deps.recorderMaxRows);
    this.journal = new IntentJournal(deps.devices);
  }

  async publish(updates: readonly DeviceUpdate[], actor: string): Promise<PublishResult[]> {
    checkBatchSize("updates", updates.length, this.deps.maxBatch);
    const start = performance.now();
    const now = this.deps.clock.nowMs();
    const m = this.deps.metrics;
    const applied = new Array<Applied>(updates.length);
    // Changes made by updates that then failed with the batch (the KV went away mid-update).
    const partial: AuditedChange[] = [];
    // The journal rows holding this batch's intents (filled by the journal): settled with its audit rows.
    const batch: JournalBatch = { now, actor, journaled: [] };
    const { journaled } = batch;
    let recording = false;
    try {
      const normalized = updates.map((u) => this.normalize(u, now));
      await runGroups(
        groupUpdates(normalized, (k) => this.deps.store.cachedDeviceId(k)),
        this.deps.concurrency ?? 32,
        async (i) => {
          applied[i] = await this.publishOne(normalized[i]!, partial, batch);
        },
      );
      recording = true;
      await this.recorder.record(applied, actor, now, [], journaled);
    } catch (e) {
      // Updates applied before the failure changed bindings: they are still audited (best effort:
      // when the database is what failed, this fails too, and the log says so).
      if (!recording) {
        await this.recorder
          .record(
            applied.filter((a) => a !== undefined),
            actor,
            now,
            partial,
            journaled,
          )
          .catch((err: unknown) =>
            this.deps.log.error(
              { actor, err: err instanceof Error ? err.message : String(err) },
              "audit of a failed batch's applied updates failed",
            ),
          );
      }
      // The batch failed as a whole (KV or database down): every update counts as failed, or the
      // publish-success alert would never see an outage. The caller retries the batch (idempotent).
      m.publishOutcome("failed", updates.length);
      m.publishBatch(updates.length, (performance.now() - start) / 1000);
      const code = e instanceof IdentityMapError ? e.code : "internal";
      this.deps.log.error(
        {
          actor,
          batch: updates.length,
          code,
          err: e instanceof Error ? e.message : String(e),
          ms: Math.round(performance.now() - start),
        },
        "publish batch failed",
      );
      throw e;
    }
    for (const a of applied) {
      m.publishOutcome(a.result.outcome);
      for (const r of a.update.rejected) m.rejectedIdentifier(r.reason);
    }
    m.publishBatch(updates.length, (performance.now() - start) / 1000);
    const counts = countOutcomes(applied);
    this.deps.log.info(
      { actor, batch: updates.length, ...counts, ms: Math.round(performance.now() - start) },
      "publish batch",
    );
    // Exhausted updates have had their own warning; this one is for those that won, but barely.
    const contended = applied.filter(
      (a) => a.result.outcome !== "failed" && (a.casConflicts?.count ?? 0) >= CONFLICT_WARN_THRESHOLD,
    );
    if (contended.length > 0) {
      const conflicts = contended.reduce((n, a) => n + a.casConflicts!.count, 0);
      this.deps.log.warn(
        { actor, updates: contended.length, conflicts, keys: contended.slice(0, 10).map((a) => a.casConflicts!.key) },
        "CAS conflicts over budget",
      );
    }
    return applied.map((a) => a.result);
  }

  /**
   * The same resolution, read-only: what publish would decide, annotated; nothing is written. For sync
   * jobs: an update whose keys the map knows gets its device's id, partition, metadata
   * hash and revision as the map holds them now; an update publish would create a device for gets nulls.
   * The batch reads one snapshot: every update's keys in batches of 256 up front (the reference's sync
   * prefetch), then whatever else decide() asks for, through the same view.
   */
  async resolve(updates: readonly DeviceUpdate[], options: { explain?: boolean } = {}): Promise<ResolveResult[]> {
    checkBatchSize("updates", updates.length, this.deps.maxBatch);
    const now = this.deps.clock.nowMs();
    const normalized = updates.map((u) => this.normalize(u, now));
    const view = new Map<string, Binding | null>();
    const keys = [...new Map(normalized.flatMap((n) => n.keys.map((k) => [keyId(k), k] as const))).values()];
    for (let i = 0; i < keys.length; i += 256) await this.deps.store.load(keys.slice(i, i + 256), view, false);
    const out: ResolveResult[] = [];
    for (const n of normalized) {
      const d = await this.decideLoaded(n, view, false);
      const known = d && d.outcome !== "created";
      // The device as the map holds it now (not as this update would rewrite it): hash and revision agree.
      const current = known
        ? (view.get(keyId({ kind: "device-id", value: d.canonicalDeviceId })) ?? matchedBinding(n, d, view))
        : undefined;
      out.push({
        device_id: n.deviceId,
        canonical_device_id: known ? d.canonicalDeviceId : null,
        canonical_partition: known ? current?.record.partition || d.partition : null,
        canonical_metadata_hash: known ? (current?.record.metadataHash ?? d.record.metadataHash) : null,
        canonical_revision: current ? current.revision : null,
        matched_by: known ? d.matchedBy : null,
        ...(n.rejected.length ? { rejected_identifiers: n.rejected } : {}),
        ...(options.explain && d ? { trace: d.trace } : {}),
      });
    }
    return out;
  }

  private normalize(u: DeviceUpdate, now: number): NormalizedUpdate {
    return normalizeUpdate(u, {
      nowMs: now,
      ...(this.deps.deniedMacs ? { deniedMacs: this.deps.deniedMacs } : {}),
      ...(this.deps.maxClockSkewMs !== undefined ? { maxFutureMs: this.deps.maxClockSkewMs } : {}),
    });
  }

  private async publishOne(u: NormalizedUpdate, partial: AuditedChange[], batch: JournalBatch): Promise<Applied> {
    const base = () => ({ device_id: u.deviceId, ...(u.rejected.length ? { rejected_identifiers: u.rejected } : {}) });
    if (u.keys.length === 0) {
      return {
        update: u,
        revisions: new Map(),
        result: { ...base(), canonical_device_id: null, matched_by: null, outcome: "rejected" },
      };
    }
    const deadline = performance.now() + this.backoff.budgetMs;
    let fresh = false;
    const cost = { reads: 0, writes: 0 };
    let conflicts = 0;
    let conflictKey = "";
    // Operation ids of this update's attempts, and the key of the last conflict, not counted yet.
    // A conflict is counted once the fresh re-read shows whose record the key holds. One of our own
    // (a write whose reply was lost and that landed after the re-read that settled it: etcd can
    // answer a read before applying a write it received earlier) is not a conflict with anyone;
    // nor is an absent key after a lost reply (our write did not land, or has not yet).
    const ownOperations = new Set<string>();
    let unsettled: { key: IdentityKey; lostReply: boolean } | undefined;
    // Made when an attempt fails: most updates never need one.
    let earlier: EarlierWrites | undefined;
    for (let attempt = 1; ; attempt++) {
      const view = new Map<string, Binding | null>();
      const attemptOf: { operationId?: string } = {};
      const d = (await this.decideLoaded(u, view, fresh, cost, attemptOf))!;
      if (unsettled) {
        const { key, lostReply } = unsettled;
        unsettled = undefined;
        if (!view.has(keyId(key))) cost.reads += await this.deps.store.load([key], view, true);
        const holder = view.get(keyId(key));
        const ours = holder ? ownOperations.has(holder.record.operationId) : lostReply;
        if (!ours) this.deps.metrics.conflict("revision_mismatch");
      }
      for (const step of d.steps) for (const w of step) if (w.op !== "delete") ownOperations.add(w.record.operationId);
      let revisions: Map<string, Revision | null>;
      const landed = new Map<string, Revision | null>();
      try {
        // What this attempt is about to change, in the database before the map (ADR 0017): should the
        // process die before the audit rows are written, recovery audits from it.
        if (d.changes.length > 0) await this.journal.put(batch, attemptOf.operationId!, d.changes);
        revisions = await this.applySteps(d, cost, landed);
      } catch (e) {
        earlier ??= new EarlierWrites();
        earlier.note(d, view, landed);
        if (!(e instanceof RevisionConflict)) {
          partial.push(...earlier.changes());
          throw e;
        }
        conflicts++;
        conflictKey = e.key;
        const delay = backoffDelay(attempt, Math.random(), this.backoff);
        if (performance.now() + delay > deadline) {
          this.deps.metrics.conflict("revision_mismatch");
          this.deps.metrics.conflict("retry_exhausted");
          this.deps.metrics.publishKvOperations("failed", cost.reads, cost.writes);
          const err = new RetryExhausted([e.key], { cause: e });
          this.deps.log.warn({ key: e.key, attempts: attempt, device_id: u.deviceId }, "CAS retries exhausted");
          return {
            update: u,
            revisions: new Map(),
            earlierChanges: await this.abandon(earlier, d.canonicalDeviceId, ownOperations),
            casConflicts: { count: conflicts, key: e.key },
            result: {
              ...base(),
              canonical_device_id: null,
              matched_by: null,
              outcome: "failed",
              error: { code: err.code, message: err.message, keys: err.keys },
            },
          };
        }
        const key = e.identityKey;
        unsettled = key && { key, lostReply: e.cause instanceof WriteOutcomeUnknown };
        if (!unsettled) this.deps.metrics.conflict("revision_mismatch");
        await sleep(delay);
        fresh = true;
        continue;
      }
      // The decision is applied: nothing below may send it round the retry loop again.
      const earlierChanges =
        !earlier || earlier.isEmpty ? [] : await reconcile(earlier, d, ownOperations, this.reconcileDeps());
      // No write: `cache` when the update cost no KV round trip at all, `hash` when bindings had to be read.
      if (d.steps.length === 0)
        this.deps.metrics.writeAvoided(cost.reads === 0 && cost.writes === 0 ? "cache" : "hash");
      if (this.deps.shadow) await this.deps.shadow.compare(u, d);
      this.countDecision(d);
      this.deps.metrics.publishKvOperations(d.outcome, cost.reads, cost.writes);
      return {
        update: u,
        decision: recordedDecision(d),
        revisions,
        ...(earlierChanges.length > 0 ? { earlierChanges } : {}),
        ...(conflicts > 0 ? { casConflicts: { count: conflicts, key: conflictKey } } : {}),
        result: decidedResult(u, d),
      };
    }
  }

  /** decide() until loaded (BindingStore.decideLoaded), under a new operation id the attempt learns. */
  private decideLoaded(
    u: NormalizedUpdate,
    view: Map<string, Binding | null>,
    fresh: boolean,
    cost: { reads: number } = { reads: 0 },
    attempt: { operationId?: string } = {},
  ): Promise<Resolved | null> {
    const operationId = `${this.instance}-${++this.seq}`;
    attempt.operationId = operationId;
    return this.deps.store.decideLoaded({ update: u, policy: this.deps.policy, operationId }, view, fresh, cost);
  }

  /**
   * Applies the steps in order. `landed` learns every write that succeeded (or may have), also when
   * a later one fails: an attempt that loses a CAS half-way has changed bindings all the same.
   */
  private async applySteps(
    d: Resolved,
    cost: { writes: number },
    landed: Map<string, Revision | null> = new Map(),
  ): Promise<Map<string, Revision | null>> {
    const ttl = this.deps.policy.weakKeyTtlMs;
    for (const step of d.steps) {
      cost.writes += step.length;
      const rs = await Promise.allSettled(step.map((w) => this.deps.store.apply(w, ttl)));
      // The audit trail names the new revision of a write, and the revision a delete removed.
      for (const [i, w] of step.entries()) {
        const r = rs[i]!;
        if (r.status === "fulfilled") landed.set(keyId(w.key), w.op === "delete" ? w.revision : r.value);
        // A write that failed other than by a conflict (the store went away, the reply was lost) may
        // have landed: it is audited with no revision rather than risk a binding nobody audited.
        else if (!(r.reason instanceof RevisionConflict)) landed.set(keyId(w.key), null);
      }
      const failed = rs.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
    }
    return landed;
  }

  /** Undoes what a given-up update's attempts bound outside its device's index; audits what stands. */
  private async abandon(earlier: EarlierWrites, deviceId: string, own: ReadonlySet<string>): Promise<AuditedChange[]> {
    try {
      return await abandon(earlier, deviceId, own, this.reconcileDeps());
    } catch (e) {
      // The store failed meanwhile: the changes stand as made, audited (the intent journal covers them).
      this.deps.log.warn({ err: e instanceof Error ? e.message : String(e), device_id: deviceId }, "could not undo");
      return earlier.changes();
    }
  }

  private reconcileDeps(): ReconcileDeps {
    return {
      store: this.deps.store,
      weakKeyTtlMs: this.deps.policy.weakKeyTtlMs,
      operationId: () => `${this.instance}-${++this.seq}`,
      log: this.deps.log,
    };
  }

  private countDecision(d: Resolved): void {
    const m = this.deps.metrics;
    for (const c of d.conflicts) m.conflict(c.reason);
    for (let i = 0; i < d.vetoes; i++) m.veto();
    for (let i = 0; i < d.staleLinks; i++) m.staleLink();
    if (d.trace.provisional) m.provisional(d.trace.provisional.action);
    for (const c of d.changes) m.bindingChange(c.reason, c.key.kind);
  }
}

/**
 * A decided update's result, field by field in the order the literal with conditional spreads had (the
 * JSON a client sees is unchanged), without spreading maybe-empty objects per update (issue 13).
 */
function decidedResult(u: NormalizedUpdate, d: Resolved): PublishResult {
  const r = { device_id: u.deviceId } as { -readonly [K in keyof PublishResult]: PublishResult[K] };
  if (u.rejected.length) r.rejected_identifiers = u.rejected;
  r.canonical_device_id = d.canonicalDeviceId;
  r.matched_by = d.matchedBy;
  r.outcome = d.outcome;
  if (d.tombstone) r.tombstone = d.tombstone;
  if (d.mergedDeviceIds.length) r.merged_device_ids = d.mergedDeviceIds;
  return r;
}

function countOutcomes(applied: readonly Applied[]): Record<string, number> {
  const c: Record<string, number> = {
    created: 0,
    updated: 0,
    unchanged: 0,
    rejected: 0,
    failed: 0,
    tombstones: 0,
    rejected_identifiers: 0,
    cas_conflicts: 0,
  };
  for (const a of applied) {
    c[a.result.outcome]!++;
    if (a.result.tombstone) c.tombstones!++;
    c.rejected_identifiers! += a.update.rejected.length;
    c.cas_conflicts! += a.casConflicts?.count ?? 0;
  }
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The binding that decided an update, when the device has no record of its own (a hydrated key). */
function matchedBinding(
  u: NormalizedUpdate,
  d: Resolved,
  view: ReadonlyMap<string, Binding | null>,
): Binding | undefined {
  for (const k of u.keys) {
    if (k.kind !== d.matchedBy) continue;
    const b = view.get(keyId(k));
    if (b && b.record.canonicalDeviceId === d.canonicalDeviceId) return b;
  }
  return undefined;
}
