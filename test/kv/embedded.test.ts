import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEmbeddedKv } from "../../src/adapters/kv/embedded-kv.js";
import { kvContract } from "../contract/kv.contract.js";

const dir = mkdtempSync(join(tmpdir(), "idmap-embedded-"));

kvContract(
  "embedded (SQLite)",
  async () => {
    const { kv, db } = await openEmbeddedKv(dir);
    return {
      kv,
      cleanup: async () => {
        await kv.close();
        await db.destroy();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  {
    // A second process-level client on the same file: watch must see writes it did not make itself.
    secondClient: async () => (await openEmbeddedKv(dir)).kv,
  },
);
