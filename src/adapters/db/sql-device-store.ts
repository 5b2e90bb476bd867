import type Database from "better-sqlite3";
import { sql, type Kysely } from "kysely";
import { DbUnavailable } from "../../domain/errors.js";
import type { IdentityKey } from "../../domain/identity-key.js";
import { prioritizeKeys } from "../../domain/identity-key.js";
import type { BindingChange } from "../../domain/binding.js";
import type {
  AuditEntry,
  AuditIntent,
  DeviceFilter,
  DeviceRow,
  DeviceStore,
  DeviceTouch,
  HistoryPage,
  KeyAsOf,
  ListedDevice,
  TombstoneEntry,
} from "../../ports/device-store.js";
import type { IdentityKv } from "../../ports/identity-kv.js";
import { SqlKv } from "../kv/sql-kv.js";
import { BINDING_TABLES, migrateToLatest } from "./migrations.js";
import { SqliteDeviceWrites } from "./sqlite-device-writes.js";

/** DeviceStore on kysely: SQLite (the default, a file under the data directory) or PostgreSQL. */
export class SqlDeviceStore implements DeviceStore {
  private readonly bindingKv: SqlKv;
  /** SQLite given its raw handle: a publish's rows and audit go through prepared statements. */
  private readonly raw: Database.Database | undefined;
  /** Prepared on first use (the tables exist only once migrated). */
  private writes: SqliteDeviceWrites | undefined;

  constructor(
    private readonly db: Kysely<any>,
    readonly dialect: "sqlite" | "postgres",
    raw?: Database.Database,
  ) {
    this.bindingKv = new SqlKv(db, { backend: `${dialect}-bindings`, dialect, tables: BINDING_TABLES });
    this.raw = dialect === "sqlite" ? raw : undefined;
  }

  /** Runs `f` holding kysely's only SQLite connection, so no kysely transaction is open around it. */
  private async exclusive(f: (w: SqliteDeviceWrites) => void): Promise<void> {
    await this.run(() =>
      this.db.connection().execute(async () => {
        this.writes ??= new SqliteDeviceWrites(this.raw!, identitiesOf);
        f(this.writes);
      }),
    );
  }

  async migrate(): Promise<void> {
    await this.run(() => migrateToLatest(this.db, this.dialect));
  }

  bindings(): IdentityKv {
    return this.bindingKv;
  }

  async upsertDevices(rows: readonly DeviceRow[]): Promise<void> {
    if (rows.length === 0) return;
    const unique = lastPerDevice(rows);
    if (this.raw) return this.exclusive((w) => w.upsertDevices(unique));
    await this.retryDeadlocks(() =>
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
                // A backfilled older sighting moves the first sighting back; a newer one never moves it on.
                first_seen: sql<number>`case when excluded.first_seen < devices.first_seen then excluded.first_seen
                  else devices.first_seen end`,
                last_seen: eb.ref("excluded.last_seen"),
                metadata: eb.ref("excluded.metadata"),
                provisional: eb.ref("excluded.provisional"),
              })),
            )
            .execute();
          // A device's addresses are its latest ones: older addresses must not answer fallback lookups.
          await trx
            .deleteFrom("device_keys")
            .where(
              "device_id",
              "in",
              chunk.map((r) => r.deviceId),
            )
            .where("kind", "in", ["ip", "partition-ip"])
            .execute();
          const keys = new Map<string, { kind: string; value: string; device_id: string; last_seen: number }>();
          for (const r of chunk) {
            for (const k of identitiesOf(r))
              keys.set(`${k.kind}|${k.value}|${r.deviceId}`, { ...k, device_id: r.deviceId, last_seen: r.lastSeenMs });
          }
          if (keys.size > 0) {
            await trx
              .insertInto("device_keys")
              .values([...keys.values()].sort(byKey))
              .onConflict((oc) =>
                oc
                  .columns(["kind", "value", "device_id"])
                  .doUpdateSet((eb) => ({ last_seen: eb.ref("excluded.last_seen") })),
              )
              .execute();
          }
        }
      }),
    );
  }

  async touchDevices(touches: readonly DeviceTouch[]): Promise<void> {
    if (touches.length === 0) return;
    const unique = lastPerDevice(touches);
    if (this.raw) return this.exclusive((w) => w.touchDevices(unique));
    await this.retryDeadlocks(() =>
      this.db.transaction().execute(async (trx) => {
        if (this.dialect === "sqlite") {
          // SQLite through kysely (no raw handle): the same two statements as the prepared path, per row.
          for (const t of unique) {
            await sql`update device_keys set last_seen = ${t.lastSeenMs} where device_id = ${t.deviceId}
              and last_seen = (select last_seen from devices where device_id = ${t.deviceId})`.execute(trx);
            await trx
              .updateTable("devices")
              .set({ last_seen: t.lastSeenMs, source: t.source })
              .where("device_id", "=", t.deviceId)
              .execute();
          }
          return;
        }
        for (let i = 0; i < unique.length; i += 500) {
          const chunk = unique.slice(i, i + 500);
          const ids = chunk.map((t) => t.deviceId);
          const times = chunk.map((t) => t.lastSeenMs);
          const sources = chunk.map((t) => t.source);
          // The identities each row carries now share its last sighting (every write gives them its time).
          await sql`update device_keys as k set last_seen = v.last_seen
            from unnest(${ids}::text[], ${times}::bigint[]) as v(device_id, last_seen), devices as d
            where k.device_id = v.device_id and d.device_id = v.device_id and k.last_seen = d.last_seen`.execute(trx);
          await sql`update devices as d set last_seen = v.last_seen, source = v.source
            from unnest(${ids}::text[], ${times}::bigint[], ${sources}::text[]) as v(device_id, last_seen, source)
            where d.device_id = v.device_id`.execute(trx);
        }
      }),
    );
  }

  async getDevice(deviceId: string): Promise<DeviceRow | null> {
    const row = await this.run(() =>
      this.db.selectFrom("devices").selectAll().where("device_id", "=", deviceId).executeTakeFirst(),
    );
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

  async listCanonicalDevices(
    filter: DeviceFilter,
    page: { afterDeviceId?: string; limit: number },
  ): Promise<ListedDevice[]> {
    // The same test in SQL (the filter) and for each listed row (the flag), so the two cannot disagree.
    const provisional = sql<boolean>`(armis_id = '' and netbox_ids = '' and macs = ''
      and (device_id = ip or device_id = partition || ':' || ip))`;
    let q = this.db
      .selectFrom("devices")
      .selectAll()
      .select(provisional.as("provisional"))
      .where("merged_into", "is", null)
      .orderBy("device_id")
      .limit(page.limit);
    if (page.afterDeviceId !== undefined) q = q.where("device_id", ">", page.afterDeviceId);
    if (filter.partition !== undefined) q = q.where("partition", "=", filter.partition);
    if (filter.source !== undefined) q = q.where("source", "=", filter.source);
    if (filter.hostname !== undefined) q = q.where("hostname", "=", filter.hostname);
    if (filter.updatedSinceMs !== undefined) q = q.where("last_seen", ">=", filter.updatedSinceMs);
    if (filter.provisional !== undefined)
      q = q.where(filter.provisional ? provisional : sql<boolean>`not ${provisional}`);
    const rows = await this.run(() => q.execute());
    if (rows.length === 0) return [];
    const keyRows = await this.run(() =>
      this.db
        .selectFrom("device_keys")
        .select(["device_id", "kind", "value"])
        .where(
          "device_id",
          "in",
          rows.map((r) => r.device_id as string),
        )
        .execute(),
    );
    const keysOf = new Map<string, IdentityKey[]>();
    for (const k of keyRows) {
      const list = keysOf.get(k.device_id) ?? [];
      list.push({ kind: k.kind, value: k.value } as IdentityKey);
      keysOf.set(k.device_id, list);
    }
    return rows.map((r) => ({
      ...fromDbRow(r),
      // SQLite answers 0/1, PostgreSQL a boolean.
      provisional: Boolean(r.provisional),
      keys: [
        { kind: "device-id", value: r.device_id } as IdentityKey,
        ...prioritizeKeys(keysOf.get(r.device_id) ?? []),
      ],
    }));
  }

  async appendAudit(entries: readonly AuditEntry[], settles: readonly string[] = []): Promise<void> {
    if (entries.length === 0 && settles.length === 0) return;
    if (this.raw) return this.exclusive((w) => w.appendAudit(entries, settles));
    await this.run(() =>
      this.db.transaction().execute(async (trx) => {
        for (let i = 0; i < entries.length; i += 500) {
          await trx
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
        for (let i = 0; i < settles.length; i += 500)
          await trx
            .deleteFrom("audit_intent")
            .where("operation_id", "in", settles.slice(i, i + 500))
            .execute();
      }),
    );
  }

  async journalIntents(intents: readonly AuditIntent[]): Promise<void> {
    if (intents.length === 0) return;
    if (this.raw) return this.exclusive((w) => w.journalIntents(intents));
    await this.run(async () => {
      for (let i = 0; i < intents.length; i += 500)
        await this.db
          .insertInto("audit_intent")
          .values(
            intents.slice(i, i + 500).map((t) => ({
              operation_id: t.operationId,
              at: t.atMs,
              actor: t.actor,
              changes: JSON.stringify(t.changes),
            })),
          )
          .onConflict((oc) => oc.column("operation_id").doNothing())
          .execute();
    });
  }

  async unsettledIntents(atOrBeforeMs: number, limit: number): Promise<AuditIntent[]> {
    const rows = await this.run(() =>
      this.db
        .selectFrom("audit_intent")
        .selectAll()
        .where("at", "<=", atOrBeforeMs)
        .orderBy("at")
        .orderBy("operation_id")
        .limit(limit)
        .execute(),
    );
    return rows.map((r) => ({
      operationId: r.operation_id,
      atMs: Number(r.at),
      actor: r.actor,
      changes: JSON.parse(r.changes) as BindingChange[],
    }));
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
    const page = rows.slice(0, options.limit).map(fromAuditRow);
    return rows.length > options.limit ? { entries: page, next: page[page.length - 1]!.id } : { entries: page };
  }

  async keyAsOf(key: IdentityKey, atMs: number): Promise<KeyAsOf> {
    const [before, after] = await this.run(() =>
      Promise.all([
        this.db
          .selectFrom("binding_audit")
          .selectAll()
          .where("kind", "=", key.kind)
          .where("value", "=", key.value)
          .where("at", "<=", atMs)
          // A pin conflict changed nothing: it is not who held the key.
          .where("reason", "!=", "pin_conflict")
          .orderBy("at", "desc")
          .orderBy("id", "desc")
          .limit(1)
          .executeTakeFirst(),
        this.db
          .selectFrom("binding_audit")
          .selectAll()
          .where("kind", "=", key.kind)
          .where("value", "=", key.value)
          .where("at", ">", atMs)
          .where("reason", "not in", ["pin_conflict", "pinned", "unpinned"])
          .orderBy("at", "asc")
          .orderBy("id", "asc")
          .limit(1)
          .executeTakeFirst(),
      ]),
    );
    return { before: before ? fromAuditRow(before) : null, after: after ? fromAuditRow(after) : null };
  }

  async pinConflicts(options: { limit: number }): Promise<HistoryPage> {
    const rows = await this.run(() =>
      this.db
        .selectFrom("binding_audit")
        .selectAll()
        .where("reason", "=", "pin_conflict")
        .orderBy("id", "desc")
        .limit(options.limit)
        .execute(),
    );
    return { entries: rows.map(fromAuditRow) };
  }

  async pruneAudit(beforeMs: number): Promise<number> {
    const r = await this.run(() =>
      this.db
        .deleteFrom("binding_audit as a")
        .where("a.at", "<", beforeMs)
        .where(({ exists, selectFrom }) =>
          exists(
            selectFrom("binding_audit as b")
              .select("b.id")
              .whereRef("b.kind", "=", "a.kind")
              .whereRef("b.value", "=", "a.value")
              .whereRef("b.id", ">", "a.id"),
          ),
        )
        .executeTakeFirst(),
    );
    return Number(r.numDeletedRows);
  }

  async ping(): Promise<void> {
    await this.run(() => sql`select 1`.execute(this.db));
  }

  async close(): Promise<void> {
    await this.bindingKv.close();
    await this.db.destroy();
  }

  async recordTombstones(entries: readonly TombstoneEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const byId = new Map(entries.map((e) => [e.deviceId, e]));
    await this.run(() =>
      this.db.transaction().execute(async (trx) => {
        const unique = [...byId.values()];
        for (let i = 0; i < unique.length; i += 200) {
          await trx
            .insertInto("tombstones")
            .values(
              unique.slice(i, i + 200).map((e) => ({
                device_id: e.deviceId,
                merged_into: e.mergedInto,
                kind: e.key?.kind ?? null,
                value: e.key?.value ?? null,
                at: e.atMs,
                actor: e.actor,
              })),
            )
            .onConflict((oc) =>
              oc.column("device_id").doUpdateSet((eb) => ({
                merged_into: eb.ref("excluded.merged_into"),
                kind: eb.ref("excluded.kind"),
                value: eb.ref("excluded.value"),
                at: eb.ref("excluded.at"),
                actor: eb.ref("excluded.actor"),
              })),
            )
            .execute();
        }
        for (let i = 0; i < unique.length; i += 200) {
          // (retired id, survivor) pairs as a VALUES list: columns column1, column2 on SQLite and PostgreSQL.
          const pairs = sql.join(unique.slice(i, i + 200).map((e) => sql`(${e.deviceId}, ${e.mergedInto})`));
          await sql`update devices set merged_into = v.column2, canonical_device_id = v.column2 from (values
            ${pairs}) as v where devices.device_id = v.column1`.execute(trx);
          // Rows merged into a retired id follow it, so no lookup stops half-way along a chain.
          await sql`update devices set merged_into = v.column2, canonical_device_id = v.column2 from (values
            ${pairs}) as v where devices.merged_into = v.column1`.execute(trx);
        }
      }),
    );
  }

  async listTombstones(options: { afterDeviceId?: string; limit: number }): Promise<TombstoneEntry[]> {
    let q = this.db.selectFrom("tombstones").selectAll().orderBy("device_id").limit(options.limit);
    if (options.afterDeviceId !== undefined) q = q.where("device_id", ">", options.afterDeviceId);
    const rows = await this.run(() => q.execute());
    return rows.map((r) => ({
      deviceId: r.device_id as string,
      mergedInto: r.merged_into as string,
      key: r.kind ? ({ kind: r.kind, value: r.value } as IdentityKey) : null,
      atMs: Number(r.at),
      actor: r.actor as string,
    }));
  }

  async getJobState(name: string): Promise<string | null> {
    const row = await this.run(() =>
      this.db.selectFrom("job_state").select("state").where("name", "=", name).executeTakeFirst(),
    );
    return row ? (row.state as string) : null;
  }

  async putJobState(name: string, state: string | null, atMs: number): Promise<void> {
    await this.run(async () => {
      if (state === null) {
        await this.db.deleteFrom("job_state").where("name", "=", name).execute();
        return;
      }
      await this.db
        .insertInto("job_state")
        .values({ name, state, updated_at: atMs })
        .onConflict((oc) => oc.column("name").doUpdateSet({ state, updated_at: atMs }))
        .execute();
    });
  }

  /**
   * Runs a transaction, again when PostgreSQL chose it as a deadlock victim (40P01) or could not
   * serialize it (40001), a bounded number of times: the transaction was rolled back whole, so
   * running it again is safe, and a deadlock is another instance's bad timing, not an outage.
   */
  private async retryDeadlocks<T>(f: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.run(f);
      } catch (e) {
        const code = (e as { cause?: { code?: unknown } }).cause?.code;
        if ((code !== "40P01" && code !== "40001") || attempt >= DEADLOCK_RETRIES) throw e;
        await new Promise((r) => setTimeout(r, 10 * attempt + Math.random() * 40));
      }
    }
  }

  private async run<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw new DbUnavailable(`${this.dialect}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
}

/**
 * The last row for each device id (as if applied in order), in device-id order: two instances writing
 * overlapping batches then lock rows in the same order, so neither holds a row the other waits for
 * while waiting for one it holds (PostgreSQL deadlocks, issue 12).
 */
function lastPerDevice<T extends { readonly deviceId: string }>(rows: readonly T[]): T[] {
  const byId = new Map(rows.map((r) => [r.deviceId, r]));
  return [...byId.values()].sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
}

const DEADLOCK_RETRIES = 5;

function byKey(
  a: { kind: string; value: string; device_id: string },
  b: { kind: string; value: string; device_id: string },
): number {
  const x = `${a.kind}\u0000${a.value}\u0000${a.device_id}`;
  const y = `${b.kind}\u0000${b.value}\u0000${b.device_id}`;
  return x < y ? -1 : x > y ? 1 : 0;
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
    provisional: r.provisional ? 1 : 0,
  };
}

function fromAuditRow(r: Record<string, any>): AuditEntry & { id: number } {
  return {
    id: Number(r.id),
    atMs: Number(r.at),
    actor: r.actor as string,
    key: { kind: r.kind, value: r.value } as IdentityKey,
    fromDeviceId: (r.from_device_id as string | null) ?? null,
    toDeviceId: (r.to_device_id as string | null) ?? null,
    revision: r.revision === null ? null : Number(r.revision),
    reason: r.reason,
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
    ...(Number(r.provisional) === 1 ? { provisional: true } : {}),
  };
}
