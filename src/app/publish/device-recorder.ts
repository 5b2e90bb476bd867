import { keyId } from "../../domain/identity-key.js";
import type { NormalizedUpdate } from "../../domain/device-update.js";
import type { BindingChange, Revision } from "../../domain/binding.js";
import { identityOf } from "../../domain/record.js";
import type { Resolved } from "../../domain/resolution.js";
import type { AuditEntry, DeviceRow, DeviceStore } from "../../ports/index.js";
import type { Logger } from "../logger.js";
import type { AuditedChange } from "./earlier-writes.js";

/** One published update as the recorder needs it: the decision (absent when none was applied). */
export interface RecordedUpdate {
  readonly update: NormalizedUpdate;
  readonly decision?: Resolved;
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
function rowAddress(u: NormalizedUpdate, d: Resolved): string {
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
  /** What each device row said when last written (a short signature), to skip rewriting it. */
  private readonly rowsWritten = new Map<string, { sig: string; lastSeenMs: number }>();

  constructor(
    private readonly devices: DeviceStore,
    private readonly log: Logger,
  ) {}

  /**
   * Device rows and the audit trail, one batch per publish. A row that says what it said last time is
   * only rewritten once its last-seen time is ROW_REFRESH_MS old, so steady sightings cost no database write.
   */
  async record(
    applied: readonly RecordedUpdate[],
    actor: string,
    now: number,
    unfinished: readonly AuditedChange[] = [],
    settles: readonly string[] = [],
  ): Promise<void> {
    const rows: DeviceRow[] = [];
    const fresh = (r: DeviceRow): boolean => {
      // The reporting source is not part of it: sources taking turns must not rewrite the row.
      const sig =
        `${r.canonicalDeviceId}|${r.mergedInto}|${r.partition}|${r.ip}|` +
        `${r.macs.join(",")}|${r.armisId}|${r.netboxIds.join(",")}|${r.hostname}|${r.provisional === true}`;
      const last = this.rowsWritten.get(r.deviceId);
      if (
        last &&
        last.sig === sig &&
        r.lastSeenMs - last.lastSeenMs < ROW_REFRESH_MS &&
        r.lastSeenMs >= last.lastSeenMs
      )
        return true;
      this.rowsWritten.set(r.deviceId, { sig, lastSeenMs: r.lastSeenMs });
      return false;
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
      this.log.info(
        {
          audit: true,
          actor,
          kind: c.key.kind,
          key: c.key.value,
          from: c.fromDeviceId,
          to: c.toDeviceId,
          revision,
          reason: c.reason,
        },
        "binding change",
      );
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
    }
    const changed = rows.filter((r) => !fresh(r));
    try {
      // The audit first: the bindings it describes are already in the map, and its rows are plain
      // inserts that never wait on another instance's locks. Device rows are upserts that can meet
      // a deadlock; failing there must not lose the trail (defect 5 of issue 12).
      await this.devices.appendAudit(audit, settles);
      await this.devices.upsertDevices(changed);
    } catch (e) {
      for (const r of changed) this.rowsWritten.delete(r.deviceId);
      throw e;
    }
  }
}
