import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDeviceStore } from "../../src/app/adapters.js";
import { loadConfig } from "../../src/app/config.js";
import type { DeviceStore } from "../../src/ports/index.js";
import { forBackend, testServers } from "../support/backends.js";
import { scratchDatabase } from "../support/postgres.js";

// A PostgreSQL restart or failover drops the service's idle pooled connections. The pool reports that as an
// `error` event; unheard, Node turns it into an uncaught exception and the process dies.
forBackend("postgres", () => {
  describe("PostgreSQL drops the service's idle connections", () => {
    let db: Awaited<ReturnType<typeof scratchDatabase>>;
    let store: DeviceStore;
    const warnings: string[] = [];
    const log = {
      info() {},
      debug() {},
      error() {},
      warn(_: object, msg: string) {
        warnings.push(msg);
      },
    };

    beforeAll(async () => {
      db = await scratchDatabase();
      store = await openDeviceStore(loadConfig({ IDMAP_DB: "postgres", IDMAP_DATABASE_URL: db.url }), log);
    });
    afterAll(async () => {
      await store?.close();
      await db?.drop();
    });

    it("logs it, keeps running, and answers the next query on a new connection", async () => {
      await store.ping();
      const admin = new pg.Client({ connectionString: testServers.postgresAdminUrl, connectionTimeoutMillis: 5_000 });
      await admin.connect();
      try {
        const name = new URL(db.url).pathname.slice(1);
        const killed = await admin.query(
          "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
          [name],
        );
        expect(killed.rowCount).toBeGreaterThan(0);
      } finally {
        await admin.end();
      }
      await expect.poll(() => warnings.length, { timeout: 5_000 }).toBeGreaterThan(0);
      expect(warnings[0]).toMatch(/idle PostgreSQL connection/);
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
});
