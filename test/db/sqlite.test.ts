import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqlDeviceStore } from "../../src/adapters/db/sql-device-store.js";
import { openSqlite, openSqliteHandles } from "../../src/adapters/db/sqlite.js";
import { deviceStoreContract } from "../contract/device-store.contract.js";
import { forBackend } from "../support/backends.js";

forBackend("sqlite", () => {
  const dir = mkdtempSync(join(tmpdir(), "idmap-devices-"));
  deviceStoreContract("sqlite", {
    open: async () => new SqlDeviceStore(openSqlite(join(dir, "devices.sqlite")), "sqlite"),
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  });
});

// As the service opens it: rows and audit written through prepared statements on the raw handle.
forBackend("sqlite", () => {
  const dir = mkdtempSync(join(tmpdir(), "idmap-devices-raw-"));
  deviceStoreContract("sqlite (prepared statements)", {
    open: async () => {
      const { db, raw } = openSqliteHandles(join(dir, "devices.sqlite"));
      return new SqlDeviceStore(db, "sqlite", raw);
    },
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  });
});
