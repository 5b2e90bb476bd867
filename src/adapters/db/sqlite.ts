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
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
  const database = new Database(file);
  database.pragma("journal_mode = WAL");
  database.pragma(`synchronous = ${sync === "full" ? "FULL" : "NORMAL"}`);
  database.pragma("busy_timeout = 5000");
  return new Kysely<any>({ dialect: new SqliteDialect({ database }) });
}
