import { keyId } from "../../domain/identity-key.js";
import type { NormalizedUpdate } from "../../domain/device-update.js";
import type { BindingChange, Revision } from "../../domain/binding.js";
import { identityOf } from "../../domain/record.js";
import type { Resolved } from "../../domain/resolution.js";
import type { AuditEntry, DeviceRow, DeviceStore, DeviceTouch } from "../../ports/index.js";
import type { Logger } from "../logger.js";
import type { AuditedChange } from "./earlier-writes.js";
import { logBindingChange } from "../bindings/audit-line.js";

/**
 * What the recorder reads of an applied decision. An update keeps only this until its batch is
 * recorded: the writes, their encoded records and the trace die with the update instead of living
 * through the batch (and into V8's old generation, where a batch of 1000 left about 100 bytes of
 * dead pages per cached binding after a million: docs/benchmarks.md, fourth pass).
 */
export type RecordedDecision = Pick<
  Resolved,
  "canonicalDeviceId" | "partition" | "record" | "tombstone" | "mergedDeviceIds" | "changes" | "conflicts"
>;

/** The parts of `d` the recorder reads, in a small object of their own. */
export function recordedDecision(d: Resolved): RecordedDecision {
  return {
    canonicalDeviceId: d.canonicalDeviceId,
    partition: d.partition,
    record: d.record,
    ...(d.tombstone ? { tombstone: d.tombstone } : {}),
    mergedDeviceIds: d.mergedDeviceIds,
    changes: d.changes,
    conflicts: d.conflicts,
  };
}

/** One published update as the recorder needs it: the decision (absent when none was applied). */
export interface RecordedUpdate {
  readonly update: NormalizedUpdate;
  readonly decision?: RecordedDecision;
  readonly revisions: ReadonlyMap<string, Revision | null>;
  /** Changes made by earlier attempts of the update (and their undoing), audited like the decision's. */
  readonly earlierChanges?: readonly AuditedChange[];
}

/**
 * The address a device row records: the update's, only when the decision kept it on the device. A
 * refused one (an out-of-order report) must not reach the row, or the relational fallback of a
 * lookup would answer it and hydrate it back into the map (defect 4 of issue 12). Otherwise the
 * address the device holds in the map, if any.
 */
function rowAddress(u: NormalizedUpdate, d: RecordedDecision): string {
  const held = d.record.keys.filter((k) => k.kind === "ip").map((k) => k.value);
  return u.ip !== "" && held.includes(u.ip) ? u.ip : (held[0] ?? "");
}

/** How stale a device row's last-seen time may get before a steady sighting rewrites it. */
const ROW_REFRESH_MS = 5 * 60_000;

/**
 * Writes what a publish decided to the relational store: device rows with their latest sighting, the
 * retired ids as merged rows, and the audit trail (also as structured log lines).
 */
export class DeviceRecorder {
  /**
   * What each device row said when last written (a 53-bit hash of it) and its last-seen time, to skip
   * rewriting it. Two numbers per device rather than the row's text: a million devices' worth is in
   * the process for as long as it runs (issue 13 measured the text at about 50 bytes per binding).
   * With `maxRows` (a bounded cache's IDMAP_CACHE_MAX_BINDINGS) the oldest-written entries go first
   * beyond it: a map larger than memory must not grow here either, and a device forgotten is only
   * written whole the next time it is seen.
   */
  private readonly rowsWritten = new Map<string, number>();
  private readonly rowsSeenMs = new Map<string, number>();

  constructor(
    private readonly devices: DeviceStore,
    private readonly log: Logger,
    /** At most this many devices remembered (undefined: every device this process wrote). */
    private readonly maxRows?: number,
  ) {}

  /**
   * Device rows and the audit trail, one batch per publish. A row that says what it said last time is
   * left alone until its last-seen time is ROW_REFRESH_MS old, so steady sightings cost no database
   * write; then only its sighting moves on (`touchDevices`: two statements instead of a row and its
   * identities rewritten, issue 13).
   */
  async record(
    applied: readonly RecordedUpdate[],
    actor: string,
    now: number,
    unfinished: readonly AuditedChange[] = [],
    settles: readonly string[] = [],
  ): Promise<void> {
    const rows: DeviceRow[] = [];
    // Rows to write whole, and rows seen again saying what they said: only their sighting moves on.
    const changed: DeviceRow[] = [];
    const touches: DeviceTouch[] = [];
    const writing = new Set<string>();
    const sort = (r: DeviceRow): void => {
      // The reporting source is not part of it: sources taking turns must not rewrite the row.
      const sig =
        `${r.canonicalDeviceId}|${r.mergedInto}|${r.partition}|${r.ip}|` +
        `${r.macs.join(",")}|${r.armisId}|${r.netboxIds.join(",")}|${r.hostname}|${r.provisional === true}`;
      const h = hash53(sig);
      const last = this.rowsSeenMs.get(r.deviceId);
      // A row written earlier in this batch is written again whole (touches go first, see below).
      if (
        last !== undefined &&
        this.rowsWritten.get(r.deviceId) === h &&
        r.lastSeenMs >= last &&
        !writing.has(r.deviceId)
      ) {
        if (r.lastSeenMs - last < ROW_REFRESH_MS) return;
        this.rowsSeenMs.set(r.deviceId, r.lastSeenMs);
        touches.push({ deviceId: r.deviceId, lastSeenMs: r.lastSeenMs, source: r.source });
        return;
      }
      r.deviceId.charCodeAt(0); // kept as a key for as long as the process runs: one flat string (compact-bindings.ts)
      if (this.maxRows !== undefined) {
        // Deleted first so that the entry moves to the end: eviction goes in order of last write.
        this.rowsWritten.delete(r.deviceId);
        this.rowsWritten.set(r.deviceId, h);
        if (this.rowsWritten.size > this.maxRows) this.evict(this.rowsWritten.size - this.maxRows);
      } else this.rowsWritten.set(r.deviceId, h);
      this.rowsSeenMs.set(r.deviceId, r.lastSeenMs);
      writing.add(r.deviceId);
      changed.push(r);
    };
    const audit: AuditEntry[] = [];
    const note = (c: BindingChange, revision: Revision | null) => {
      audit.push({
        atMs: now,
        actor,
        key: c.key,
        fromDeviceId: c.fromDeviceId,
        toDeviceId: c.toDeviceId,
        revision,
        reason: c.reason,
      });
      logBindingChange(this.log, actor, c, revision);
    };
    for (const e of unfinished) note(e.change, e.revision);
    for (const a of applied) {
      for (const e of a.earlierChanges ?? []) note(e.change, e.revision);
      const d = a.decision;
      if (!d) continue;
      const u = a.update;
      const id = identityOf(d.record);
      rows.push({
        deviceId: d.canonicalDeviceId,
        canonicalDeviceId: d.canonicalDeviceId,
        mergedInto: null,
        partition: d.partition,
        ip: rowAddress(u, d),
        macs: id.macs,
        armisId: id.armisId,
        netboxIds: id.netboxIds,
        hostname: id.hostname,
        source: u.source,
        firstSeenMs: u.timeMs,
        lastSeenMs: u.timeMs,
        metadata: {},
        provisional: (d.record.provisionalSinceMs ?? 0) > 0,
      });
      const retired = [...(d.tombstone ? [d.tombstone.device_id] : []), ...d.mergedDeviceIds];
      for (const r of retired) {
        if (r === d.canonicalDeviceId) continue;
        rows.push({ ...rows[rows.length - 1]!, deviceId: r, mergedInto: d.canonicalDeviceId });
      }
      for (const c of d.changes) note(c, a.revisions.get(keyId(c.key)) ?? null);
      // A sighting refused by an operator's pin is in the trail of both devices, for the operator (ADR 0016).
      for (const c of d.conflicts)
        if (c.reason === "pinned")
          note(
            { key: c.key, fromDeviceId: c.heldBy ?? null, toDeviceId: d.canonicalDeviceId, reason: "pin_conflict" },
            null,
          );
    }
    for (const r of rows) sort(r);
    try {
      // The audit first: the bindings it describes are already in the map, and its rows are plain
      // inserts that never wait on another instance's locks. Device rows are upserts that can meet
      // a deadlock; failing there must not lose the trail (defect 5 of issue 12).
      await this.devices.appendAudit(audit, settles);
      // Touches before writes: a device touched and then written in one batch ends as written.
      await this.devices.touchDevices(touches);
      await this.devices.upsertDevices(changed);
    } catch (e) {
      for (const r of [...changed, ...touches]) this.forget(r.deviceId);
      throw e;
    }
  }

  private evict(n: number): void {
    for (const id of this.rowsWritten.keys()) {
      if (n-- <= 0) return;
      this.forget(id);
    }
  }

  private forget(deviceId: string): void {
    this.rowsWritten.delete(deviceId);
    this.rowsSeenMs.delete(deviceId);
  }
}

/**
 * Two FNV-1a passes (different offsets) folded into one 53-bit integer: two different rows share a
 * value with odds of about 1 in 2^53, and then one rewrite is skipped until the next refresh.
 */
function hash53(s: string): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193 + 0x1000);
  }
  return (a >>> 0) * 0x200000 + ((b >>> 0) & 0x1fffff);
}
