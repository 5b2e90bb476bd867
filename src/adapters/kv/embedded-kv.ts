import { join } from "node:path";
import type { Kysely } from "kysely";
import { openSqliteHandles, type SqliteSync } from "../db/sqlite.js";
import { createSqlKvTables } from "./sql-kv.js";
import { SqliteKv } from "./sqlite-kv.js";

const TABLES = { entries: "kv_entries", changes: "kv_changes" } as const;

/**
 * The default backend: a durable SQLite file under the data directory (`<dataDir>/kv.sqlite`). The
 * schema is created through kysely; reads and writes run on prepared statements with group commit.
 */
export async function openEmbeddedKv(
  dataDir: string,
  sync: SqliteSync = "full",
): Promise<{ kv: SqliteKv; db: Kysely<any> }> {
  const { db, raw } = openSqliteHandles(dataDir === ":memory:" ? ":memory:" : join(dataDir, "kv.sqlite"), sync);
  await createSqlKvTables(db, "sqlite", TABLES);
  return { kv: new SqliteKv(raw, TABLES, { backend: "embedded", pollMs: 50 }), db };
}
