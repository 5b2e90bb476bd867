import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqlDeviceStore } from "../../src/adapters/db/sql-device-store.js";
import { openSqlite } from "../../src/adapters/db/sqlite.js";
import { deviceStoreContract } from "../contract/device-store.contract.js";
import { forBackend } from "../support/backends.js";

forBackend("sqlite", () => {
  const dir = mkdtempSync(join(tmpdir(), "idmap-devices-"));
  deviceStoreContract("sqlite", {
    open: async () => new SqlDeviceStore(openSqlite(join(dir, "devices.sqlite")), "sqlite"),
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  });
});
