import { sql, type Kysely } from "kysely";
import { DbUnavailable } from "../../domain/errors.js";
import type { IdentityKey } from "../../domain/identity-key.js";
import type { AuditEntry, DeviceRow, DeviceStore, HistoryPage } from "../../ports/device-store.js";
import type { IdentityKv } from "../../ports/identity-kv.js";
import { SqlKv } from "../kv/sql-kv.js";
import { BINDING_TABLES, migrateToLatest } from "./migrations.js";

/** DeviceStore on kysely: SQLite (the default, a file under the data directory) or PostgreSQL. */
export class SqlDeviceStore implements DeviceStore {
  private readonly bindingKv: SqlKv;

  constructor(private readonly db: Kysely<any>, readonly dialect: "sqlite" | "postgres") {
    this.bindingKv = new SqlKv(db, { backend: `${dialect}-bindings`, dialect, tables: BINDING_TABLES });
  }

  async migrate(): Promise<void> {
    await this.run(() => migrateToLatest(this.db, this.dialect));
  }

  bindings(): IdentityKv {
    return this.bindingKv;
  }

  async upsertDevices(rows: readonly DeviceRow[]): Promise<void> {
    if (rows.length === 0) return;
    // The last row for a device id wins, as if applied in order.
    const byId = new Map(rows.map((r) => [r.deviceId, r]));
    const unique = [...byId.values()];
    await this.run(() =>
      this.db.transaction().execute(async (trx) => {
        for (let i = 0; i < unique.length; i += 200) {
          const chunk = unique.slice(i, i + 200);
          await trx
            .insertInto("devices")
            .values(chunk.map(toDbRow))
            .onConflict((oc) =>
              oc.column("device_id").doUpdateSet((eb) => ({
                canonical_device_id: eb.ref("excluded.canonical_device_id"),
                merged_into: eb.ref("excluded.merged_into"),
                partition: eb.ref("excluded.partition"),
                ip: eb.ref("excluded.ip"),
                macs: eb.ref("excluded.macs"),
                armis_id: eb.ref("excluded.armis_id"),
                netbox_ids: eb.ref("excluded.netbox_ids"),
                hostname: eb.ref("excluded.hostname"),
                source: eb.ref("excluded.source"),
                last_seen: eb.ref("excluded.last_seen"),
                metadata: eb.ref("excluded.metadata"),
              })),
            )
            .execute();
          // A device's addresses are its latest ones: older addresses must not answer fallback lookups.
          await trx
            .deleteFrom("device_keys")
            .where("device_id", "in", chunk.map((r) => r.deviceId))
            .where("kind", "in", ["ip", "partition-ip"])
            .execute();
          const keys = new Map<string, { kind: string; value: string; device_id: string; last_seen: number }>();
          for (const r of chunk) {
            for (const k of identitiesOf(r)) keys.set(`${k.kind}|${k.value}|${r.deviceId}`, { ...k, device_id: r.deviceId, last_seen: r.lastSeenMs });
          }
          if (keys.size > 0) {
            await trx
              .insertInto("device_keys")
              .values([...keys.values()])
              .onConflict((oc) => oc.columns(["kind", "value", "device_id"]).doUpdateSet((eb) => ({ last_seen: eb.ref("excluded.last_seen") })))
              .execute();
          }
        }
      }),
    );
  }

  async getDevice(deviceId: string): Promise<DeviceRow | null> {
    const row = await this.run(() => this.db.selectFrom("devices").selectAll().where("device_id", "=", deviceId).executeTakeFirst());
    return row ? fromDbRow(row) : null;
  }

  async findByIdentity(key: IdentityKey): Promise<DeviceRow | null> {
    if (key.kind === "device-id") return this.getDevice(key.value);
    const row = await this.run(() =>
      this.db
        .selectFrom("device_keys as k")
        .innerJoin("devices as d", "d.device_id", "k.device_id")
        .selectAll("d")
        .where("k.kind", "=", key.kind)
        .where("k.value", "=", key.value)
        .where("d.merged_into", "is", null)
        .orderBy("k.last_seen", "desc")
        .orderBy("d.device_id")
        .limit(1)
        .executeTakeFirst(),
    );
    return row ? fromDbRow(row) : null;
  }

  async listDevices(options: { afterDeviceId?: string; limit: number; partition?: string }): Promise<DeviceRow[]> {
    let q = this.db.selectFrom("devices").selectAll().orderBy("device_id").limit(options.limit);
    if (options.afterDeviceId !== undefined) q = q.where("device_id", ">", options.afterDeviceId);
    if (options.partition !== undefined) q = q.where("partition", "=", options.partition);
    const rows = await this.run(() => q.execute());
    return rows.map(fromDbRow);
  }

  async appendAudit(entries: readonly AuditEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.run(async () => {
      for (let i = 0; i < entries.length; i += 500) {
        await this.db
          .insertInto("binding_audit")
          .values(
            entries.slice(i, i + 500).map((e) => ({
              at: e.atMs,
              actor: e.actor,
              kind: e.key.kind,
              value: e.key.value,
              from_device_id: e.fromDeviceId,
              to_device_id: e.toDeviceId,
              revision: e.revision,
              reason: e.reason,
            })),
          )
          .execute();
      }
    });
  }

  async history(deviceId: string, options: { limit: number; before?: number }): Promise<HistoryPage> {
    const rows = await this.run(() => {
      let q = this.db
        .selectFrom("binding_audit")
        .selectAll()
        .where((eb) => eb.or([eb("from_device_id", "=", deviceId), eb("to_device_id", "=", deviceId)]))
        .orderBy("id", "desc")
        .limit(options.limit + 1);
      if (options.before !== undefined) q = q.where("id", "<", options.before);
      return q.execute();
    });
    const page = rows.slice(0, options.limit).map((r) => ({
      id: Number(r.id),
      atMs: Number(r.at),
      actor: r.actor as string,
      key: { kind: r.kind, value: r.value } as IdentityKey,
      fromDeviceId: (r.from_device_id as string | null) ?? null,
      toDeviceId: (r.to_device_id as string | null) ?? null,
      revision: r.revision === null ? null : Number(r.revision),
      reason: r.reason,
    }));
    return rows.length > options.limit ? { entries: page, next: page[page.length - 1]!.id } : { entries: page };
  }

  async ping(): Promise<void> {
    await this.run(() => sql`select 1`.execute(this.db));
  }

  async close(): Promise<void> {
    await this.bindingKv.close();
    await this.db.destroy();
  }

  private async run<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw new DbUnavailable(`${this.dialect}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
}

function identitiesOf(r: DeviceRow): { kind: string; value: string }[] {
  const out: { kind: string; value: string }[] = [];
  if (r.armisId) out.push({ kind: "armis-id", value: r.armisId });
  for (const n of r.netboxIds) out.push({ kind: "netbox-id", value: n });
  for (const m of r.macs) out.push({ kind: "mac", value: m });
  if (r.ip) {
    out.push({ kind: "ip", value: r.ip });
    out.push({ kind: "partition-ip", value: r.partition ? `${r.partition}:${r.ip}` : r.ip });
  }
  return out;
}

function toDbRow(r: DeviceRow) {
  return {
    device_id: r.deviceId,
    canonical_device_id: r.canonicalDeviceId,
    merged_into: r.mergedInto,
    partition: r.partition,
    ip: r.ip,
    macs: r.macs.join(","),
    armis_id: r.armisId,
    netbox_ids: r.netboxIds.join(","),
    hostname: r.hostname,
    source: r.source,
    first_seen: r.firstSeenMs,
    last_seen: r.lastSeenMs,
    metadata: JSON.stringify(r.metadata),
  };
}

function fromDbRow(r: Record<string, any>): DeviceRow {
  const split = (s: string) => (s ? s.split(",") : []);
  return {
    deviceId: r.device_id,
    canonicalDeviceId: r.canonical_device_id,
    mergedInto: r.merged_into ?? null,
    partition: r.partition,
    ip: r.ip,
    macs: split(r.macs),
    armisId: r.armis_id,
    netboxIds: split(r.netbox_ids),
    hostname: r.hostname,
    source: r.source,
    firstSeenMs: Number(r.first_seen),
    lastSeenMs: Number(r.last_seen),
    metadata: JSON.parse(r.metadata || "{}"),
  };
}
