import type Database from "better-sqlite3";
import type { AuditEntry, AuditIntent, DeviceRow, DeviceTouch } from "../../ports/device-store.js";

/** One device_keys row: an identity a device row carries. */
export interface DeviceKeyRow {
  readonly kind: string;
  readonly value: string;
}

/**
 * The SQLite device store's write path (a publish's device rows and audit trail), on better-sqlite3
 * prepared statements, one transaction per call. Through kysely, each batch compiled a multi-row insert
 * whose statement SQLite prepared anew (its text changes with the row count): a quarter of a publish's
 * CPU in the profiles (docs/benchmarks.md). The statements are the same SQL as the kysely path's.
 *
 * The caller must hold kysely's connection (`db.connection().execute`) while calling: a synchronous
 * statement on this handle inside someone else's open kysely transaction would join it (ADR 0007).
 */
export class SqliteDeviceWrites {
  private readonly st;
  private readonly upsertTx: (rows: readonly DeviceRow[]) => void;
  private readonly touchTx: (touches: readonly DeviceTouch[]) => void;
  private readonly auditTx: (entries: readonly AuditEntry[], settles: readonly string[]) => void;
  private readonly journalTx: (intents: readonly AuditIntent[]) => void;

  constructor(
    raw: Database.Database,
    private readonly identitiesOf: (r: DeviceRow) => DeviceKeyRow[],
  ) {
    this.st = {
      device: raw.prepare(
        `insert into devices (device_id, canonical_device_id, merged_into, partition, ip, macs, armis_id, netbox_ids,
           hostname, source, first_seen, last_seen, metadata, provisional)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         on conflict (device_id) do update set canonical_device_id = excluded.canonical_device_id,
           merged_into = excluded.merged_into, partition = excluded.partition, ip = excluded.ip,
           macs = excluded.macs, armis_id = excluded.armis_id, netbox_ids = excluded.netbox_ids,
           hostname = excluded.hostname, source = excluded.source,
           first_seen = case when excluded.first_seen < devices.first_seen then excluded.first_seen
             else devices.first_seen end,
           last_seen = excluded.last_seen, metadata = excluded.metadata, provisional = excluded.provisional`,
      ),
      dropAddresses: raw.prepare(`delete from device_keys where device_id = ? and kind in ('ip', 'partition-ip')`),
      key: raw.prepare(
        `insert into device_keys (kind, value, device_id, last_seen) values (?, ?, ?, ?)
         on conflict (kind, value, device_id) do update set last_seen = excluded.last_seen`,
      ),
      audit: raw.prepare(
        `insert into binding_audit (at, actor, kind, value, from_device_id, to_device_id, revision, reason)
         values (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // The identities a row carries now are those its last write gave it: they share its last sighting.
      touchKeys: raw.prepare(
        `update device_keys set last_seen = ? where device_id = ?
           and last_seen = (select last_seen from devices where device_id = ?)`,
      ),
      touchDevice: raw.prepare(`update devices set last_seen = ?, source = ? where device_id = ?`),
      settle: raw.prepare(`delete from audit_intent where operation_id = ?`),
      intent: raw.prepare(
        `insert into audit_intent (operation_id, at, actor, changes) values (?, ?, ?, ?)
         on conflict (operation_id) do nothing`,
      ),
    };
    this.upsertTx = raw.transaction((rows: readonly DeviceRow[]) => {
      for (const r of rows) {
        this.st.device.run(
          r.deviceId,
          r.canonicalDeviceId,
          r.mergedInto,
          r.partition,
          r.ip,
          r.macs.join(","),
          r.armisId,
          r.netboxIds.join(","),
          r.hostname,
          r.source,
          r.firstSeenMs,
          r.lastSeenMs,
          JSON.stringify(r.metadata),
          r.provisional ? 1 : 0,
        );
        // A device's addresses are its latest ones: older addresses must not answer fallback lookups.
        this.st.dropAddresses.run(r.deviceId);
        for (const k of this.identitiesOf(r)) this.st.key.run(k.kind, k.value, r.deviceId, r.lastSeenMs);
      }
    });
    this.touchTx = raw.transaction((touches: readonly DeviceTouch[]) => {
      for (const t of touches) {
        this.st.touchKeys.run(t.lastSeenMs, t.deviceId, t.deviceId);
        this.st.touchDevice.run(t.lastSeenMs, t.source, t.deviceId);
      }
    });
    // The audit rows and the intents they settle, in one transaction (ADR 0017).
    this.auditTx = raw.transaction((entries: readonly AuditEntry[], settles: readonly string[]) => {
      for (const id of settles) this.st.settle.run(id);
      for (const e of entries)
        this.st.audit.run(e.atMs, e.actor, e.key.kind, e.key.value, e.fromDeviceId, e.toDeviceId, e.revision, e.reason);
    });
    this.journalTx = raw.transaction((intents: readonly AuditIntent[]) => {
      for (const t of intents) this.st.intent.run(t.operationId, t.atMs, t.actor, JSON.stringify(t.changes));
    });
  }

  /** Rows already deduplicated by device id (the last one wins). */
  upsertDevices(rows: readonly DeviceRow[]): void {
    this.upsertTx(rows);
  }

  /** Touches already deduplicated by device id. */
  touchDevices(touches: readonly DeviceTouch[]): void {
    this.touchTx(touches);
  }

  appendAudit(entries: readonly AuditEntry[], settles: readonly string[]): void {
    this.auditTx(entries, settles);
  }

  journalIntents(intents: readonly AuditIntent[]): void {
    this.journalTx(intents);
  }
}
