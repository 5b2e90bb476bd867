import { join } from "node:path";
import type { Kysely } from "kysely";
import { openSqlite, type SqliteSync } from "../db/sqlite.js";
import { createSqlKvTables, SqlKv } from "./sql-kv.js";

const TABLES = { entries: "kv_entries", changes: "kv_changes" } as const;

/** The default backend: a durable SQLite file under the data directory (`<dataDir>/kv.sqlite`). */
export async function openEmbeddedKv(dataDir: string, sync: SqliteSync = "full"): Promise<{ kv: SqlKv; db: Kysely<any> }> {
  const db = openSqlite(dataDir === ":memory:" ? ":memory:" : join(dataDir, "kv.sqlite"), sync);
  await createSqlKvTables(db, "sqlite", TABLES);
  return { kv: new SqlKv(db, { backend: "embedded", dialect: "sqlite", tables: TABLES, pollMs: 50 }), db };
}
