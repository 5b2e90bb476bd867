import { afterAll, describe, expect, it } from "vitest";
import { runBackfill } from "../../src/app/backfill/backfill.js";
import { keyPath } from "../../src/domain/key-path.js";
import { generateHistory } from "./history.js";
import { appsOn, owners, removeScratch, tmpFile, tombstonePairs } from "./support.js";

afterAll(removeScratch);

const history = generateHistory(1);
const newApp = appsOn(history.rows);

describe(`backfill --seed-kv-only on a generated history of ${history.rows.length} rows`, { timeout: 180_000 }, () => {
  it("seeds every canonical device and emits no tombstone; a full run afterwards emits exactly the held-back duplicates", async () => {
    const { app, kv } = await newApp();
    try {
      const seeded = await runBackfill(app, { seedKvOnly: true, chunk: 2_000 });
      expect(seeded.summary).toMatchObject({
        tombstones: 0,
        duplicate_groups: history.duplicateGroups,
        candidate_rows: history.rows.length,
      });
      expect(seeded.tombstonesOut).toBeNull();
      expect((await app.devices.listDevices({ limit: 1_000_000 })).filter((r) => r.mergedInto !== null)).toEqual([]);
      expect(await app.devices.listTombstones({ limit: 10 })).toEqual([]);
      const own = await owners(kv);
      const at = (kind: string, value: string) => own.get(keyPath(app.config.namespace, { kind, value } as never));
      for (const canonical of new Set(history.canonicalOf.values())) expect(at("device-id", canonical)).toBe(canonical);
      for (const retired of history.tombstones.keys()) expect(at("device-id", retired)).toBeUndefined();

      // The reference skipped a tombstone whenever the group's key was in the KV, so after a seeding
      // run it never emitted them; here a retired id counts as done only once it redirects too.
      const out = tmpFile("after-seed.jsonl");
      const full = await runBackfill(app, { tombstonesOut: out, chunk: 2_000 });
      expect(full.summary).toMatchObject({ tombstones: history.tombstones.size, skipped_in_kv: 0 });
      expect(tombstonePairs(out)).toEqual(history.tombstones);
    } finally {
      await app.close();
    }
  });
});
