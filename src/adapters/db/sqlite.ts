import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";

export type SqliteSync = "full" | "normal";

/**
 * Opens (creating if needed) a SQLite file for kysely. WAL lets readers run beside the writer;
 * `synchronous` decides durability: FULL syncs the WAL on every commit (an acknowledged write
 * survives power loss), NORMAL only at checkpoints (survives a process crash, not power loss).
 */
export function openSqlite(file: string, sync: SqliteSync = "full"): Kysely<any> {
  return openSqliteHandles(file, sync).db;
}

/** The kysely instance and the raw better-sqlite3 handle under it (for prepared-statement hot paths). */
export function openSqliteHandles(
  file: string,
  sync: SqliteSync = "full",
): { db: Kysely<any>; raw: Database.Database } {
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
  const raw = new Database(file);
  raw.pragma("journal_mode = WAL");
  raw.pragma(`synchronous = ${sync === "full" ? "FULL" : "NORMAL"}`);
  raw.pragma("busy_timeout = 5000");
  return { db: new Kysely<any>({ dialect: new SqliteDialect({ database: raw }) }), raw };
}
