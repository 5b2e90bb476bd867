import pg from "pg";
import { testServers, uniqueName } from "./backends.js";

/** A database of its own on the shared PostgreSQL server, for service instances that share one store. */
export async function scratchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = uniqueName("idmap_test");
  const admin = async <T>(f: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: testServers.postgresAdminUrl, connectionTimeoutMillis: 5_000 });
    await c.connect();
    try {
      return await f(c);
    } finally {
      await c.end();
    }
  };
  await admin((c) => c.query(`create database ${name}`));
  const u = new URL(testServers.postgresAdminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: () => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => {}),
  };
}
