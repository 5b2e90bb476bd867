import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from "kysely";
import { createSqlKvTables } from "../kv/sql-kv.js";

export const BINDING_TABLES = { entries: "binding_entries", changes: "binding_changes" } as const;

/**
 * The relational schema, one migration per step, the same on SQLite and PostgreSQL. Kept in code
 * (not files) so the compiled package carries them.
 */
/** The audit reasons before migration 006, and their names since. */
export const RENAMED_REASONS: Readonly<Record<string, string>> = {
  create: "created",
  rebind: "moved",
  delete: "moved",
  merge: "merged",
  redirect: "merged",
  expire: "expired",
  hydrate: "hydrated",
};

export function migrations(dialect: "sqlite" | "postgres"): Record<string, Migration> {
  const text = sql.raw("text");
  return {
    "001_devices": {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable("devices")
          .ifNotExists()
          .addColumn("device_id", text, (c) => c.primaryKey())
          .addColumn("canonical_device_id", text, (c) => c.notNull())
          .addColumn("merged_into", text)
          .addColumn("partition", text, (c) => c.notNull().defaultTo(""))
          .addColumn("ip", text, (c) => c.notNull().defaultTo(""))
          .addColumn("macs", text, (c) => c.notNull().defaultTo(""))
          .addColumn("armis_id", text, (c) => c.notNull().defaultTo(""))
          .addColumn("netbox_ids", text, (c) => c.notNull().defaultTo(""))
          .addColumn("hostname", text, (c) => c.notNull().defaultTo(""))
          .addColumn("source", text, (c) => c.notNull().defaultTo(""))
          .addColumn("first_seen", "bigint", (c) => c.notNull())
          .addColumn("last_seen", "bigint", (c) => c.notNull())
          .addColumn("metadata", text, (c) => c.notNull().defaultTo("{}"))
          .execute();
        await db.schema
          .createIndex("devices_canonical")
          .ifNotExists()
          .on("devices")
          .column("canonical_device_id")
          .execute();
        await db.schema
          .createTable("device_keys")
          .ifNotExists()
          .addColumn("kind", text, (c) => c.notNull())
          .addColumn("value", text, (c) => c.notNull())
          .addColumn("device_id", text, (c) => c.notNull())
          .addColumn("last_seen", "bigint", (c) => c.notNull())
          .addPrimaryKeyConstraint("device_keys_pk", ["kind", "value", "device_id"])
          .execute();
        await db.schema.createIndex("device_keys_device").ifNotExists().on("device_keys").column("device_id").execute();
      },
    },
    "002_audit": {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable("binding_audit")
          .ifNotExists()
          .addColumn("id", dialect === "postgres" ? "bigserial" : "integer", (c) =>
            dialect === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn("at", "bigint", (c) => c.notNull())
          .addColumn("actor", text, (c) => c.notNull())
          .addColumn("kind", text, (c) => c.notNull())
          .addColumn("value", text, (c) => c.notNull())
          .addColumn("from_device_id", text)
          .addColumn("to_device_id", text)
          .addColumn("revision", "bigint")
          .addColumn("reason", text, (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("binding_audit_from")
          .ifNotExists()
          .on("binding_audit")
          .columns(["from_device_id", "id"])
          .execute();
        await db.schema
          .createIndex("binding_audit_to")
          .ifNotExists()
          .on("binding_audit")
          .columns(["to_device_id", "id"])
          .execute();
      },
    },
    "003_bindings": {
      async up(db: Kysely<any>) {
        await createSqlKvTables(db, dialect, BINDING_TABLES);
      },
    },
    "004_backfill": {
      async up(db: Kysely<any>) {
        // Tombstones decided outside a publish (backfill): the retired id, where it points, and the key that tied them.
        await db.schema
          .createTable("tombstones")
          .ifNotExists()
          .addColumn("device_id", text, (c) => c.primaryKey())
          .addColumn("merged_into", text, (c) => c.notNull())
          .addColumn("kind", text)
          .addColumn("value", text)
          .addColumn("at", "bigint", (c) => c.notNull())
          .addColumn("actor", text, (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("tombstones_merged_into")
          .ifNotExists()
          .on("tombstones")
          .column("merged_into")
          .execute();
        // Recording a tombstone moves the rows merged into the retired id along with it.
        await db.schema.createIndex("devices_merged_into").ifNotExists().on("devices").column("merged_into").execute();
        // State of long-running jobs (the backfill's checkpoint), so an interrupted run can resume.
        await db.schema
          .createTable("job_state")
          .ifNotExists()
          .addColumn("name", text, (c) => c.primaryKey())
          .addColumn("state", text, (c) => c.notNull())
          .addColumn("updated_at", "bigint", (c) => c.notNull())
          .execute();
      },
    },
    "005_provisional": {
      async up(db: Kysely<any>) {
        // 1 while the device only ever carried addresses (ADR 0010, provisional devices).
        await db.schema
          .alterTable("devices")
          .addColumn("provisional", "integer", (c) => c.notNull().defaultTo(0))
          .execute();
      },
    },
    "006_reason_names": {
      async up(db: Kysely<any>) {
        // Audit reasons take design.md §5's names (create -> created, rebind and delete -> moved, ...).
        for (const [from, to] of Object.entries(RENAMED_REASONS))
          await db.updateTable("binding_audit").set({ reason: to }).where("reason", "=", from).execute();
      },
    },
    "007_audit_intents": {
      async up(db: Kysely<any>) {
        // Binding changes journaled before their KV writes, settled with their audit rows (ADR 0017).
        await db.schema
          .createTable("audit_intent")
          .ifNotExists()
          .addColumn("operation_id", text, (c) => c.primaryKey())
          .addColumn("at", "bigint", (c) => c.notNull())
          .addColumn("actor", text, (c) => c.notNull())
          .addColumn("changes", text, (c) => c.notNull())
          .execute();
        await db.schema.createIndex("audit_intent_at").ifNotExists().on("audit_intent").column("at").execute();
      },
    },
  };
}

export async function migrateToLatest(db: Kysely<any>, dialect: "sqlite" | "postgres"): Promise<void> {
  const all = migrations(dialect);
  const provider: MigrationProvider = { getMigrations: async () => all };
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}
