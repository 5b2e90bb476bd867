import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { type Logger, silentLogger } from "../../ports/logger.js";

/**
 * Opens a PostgreSQL pool for kysely. An idle pooled connection the server drops (a restart, a failover,
 * `pg_terminate_backend`) makes the pool emit `error`; without a listener Node treats that as an uncaught
 * exception and the process dies. The pool already discards the broken client and opens a new one on next
 * use, so the error is only logged.
 */
export function openPostgres(url: string, log: Logger = silentLogger): Kysely<any> {
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5_000 });
  pool.on("error", (err) =>
    log.warn({ err: err.message }, "an idle PostgreSQL connection failed; the pool replaces it"),
  );
  return new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
}
