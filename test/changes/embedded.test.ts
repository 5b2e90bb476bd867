import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEmbeddedKv } from "../../src/adapters/kv/embedded-kv.js";
import type { SqliteKv } from "../../src/adapters/kv/sqlite-kv.js";
import { changeStreamContract } from "../contract/change-stream.contract.js";
import { forBackend } from "../support/backends.js";

forBackend("embedded", () => {
  changeStreamContract(
    "embedded (SQLite)",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "idmap-stream-"));
      const dbs: { destroy(): Promise<void> }[] = [];
      return {
        // Every instance opens the file itself, as separate processes would.
        client: async () => {
          const { kv, db } = await openEmbeddedKv(dir);
          dbs.push(db);
          return kv;
        },
        forget: async (kv) => (kv as SqliteKv).trimChanges(1),
        cleanup: async () => {
          for (const db of dbs) await db.destroy().catch(() => {});
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
    { keepsEveryChange: true },
  );
});
