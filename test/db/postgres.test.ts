import pg from "pg";
import { openPostgres } from "../../src/adapters/db/postgres.js";
import { SqlDeviceStore } from "../../src/adapters/db/sql-device-store.js";
import { deviceStoreContract } from "../contract/device-store.contract.js";
import { forBackend, testServers, uniqueName } from "../support/backends.js";

forBackend("postgres", () => {
  // One database per run, created on first use and dropped at the end.
  const database = uniqueName("idmap_test");
  const admin = () => new pg.Client({ connectionString: testServers.postgresAdminUrl, connectionTimeoutMillis: 5_000 });
  let created: Promise<string> | undefined;
  const url = () =>
    (created ??= (async () => {
      const c = admin();
      await c.connect();
      try {
        await c.query(`create database ${database}`);
      } finally {
        await c.end();
      }
      const u = new URL(testServers.postgresAdminUrl);
      u.pathname = `/${database}`;
      return u.toString();
    })());

  deviceStoreContract("postgres", {
    open: async () => new SqlDeviceStore(openPostgres(await url()), "postgres"),
    dispose: async () => {
      if (!created) return;
      const c = admin();
      await c.connect();
      try {
        await c.query(`drop database if exists ${database} with (force)`);
      } finally {
        await c.end();
      }
    },
  });
});
