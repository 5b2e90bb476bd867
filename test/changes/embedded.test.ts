import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEmbeddedKv } from "../../src/adapters/kv/embedded-kv.js";
import type { SqliteKv } from "../../src/adapters/kv/sqlite-kv.js";
import { describe, expect, it } from "vitest";
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

forBackend("embedded", () => {
  describe("embedded watch after a commit of this process", () => {
    it("delivers the commit's changes at the end of its task, before any timer", async () => {
      const dir = mkdtempSync(join(tmpdir(), "idmap-stream-poke-"));
      const { kv, db } = await openEmbeddedKv(dir);
      try {
        const seen: number[] = [];
        const handle = await kv.watch(
          "p/",
          0,
          (c) => void seen.push(c.revision),
          () => {},
        );
        // Two writes of one commit (issued in the same turn), then microtasks only: a watch polled on
        // a timer (a busy service reaches timers late) would not have them yet.
        const revisions = await Promise.all([
          kv.create("p/a", new Uint8Array([1])),
          kv.create("p/b", new Uint8Array([2])),
        ]);
        for (let i = 0; i < 10; i++) await Promise.resolve();
        expect(seen).toEqual(revisions);
        await handle.stop();
        await kv.create("p/c", new Uint8Array([3]));
        await new Promise((r) => setTimeout(r, 80));
        expect(seen).toEqual(revisions); // stopped: nothing after
      } finally {
        await kv.close();
        await db.destroy().catch(() => {});
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
