import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { runBackfill, type BackfillReport } from "../../src/app/backfill/backfill.js";
import type { App } from "../../src/app/container.js";
import { keyPath } from "../../src/domain/key-path.js";
import { countingKv } from "../support/app.js";
import { generateHistory } from "./history.js";
import { appsOn, dbState, kvState, owners, readJsonLines, removeScratch, tmpFile, tombstonePairs } from "./support.js";

afterAll(removeScratch);

const history = generateHistory(1);
const newApp = appsOn(history.rows);

describe(`backfill on a generated history of ${history.rows.length} rows`, { timeout: 180_000 }, () => {
  let A: { app: App; kv: MemoryKv };
  let dry: BackfillReport;
  const firstOut = tmpFile("first.jsonl");

  beforeAll(async () => {
    expect(history.rows.length).toBeGreaterThanOrEqual(50_000);
    A = await newApp();
  });
  afterAll(async () => {
    await A?.app.close();
  });

  it("a dry run counts what a run would do and changes nothing", async () => {
    const before = { kv: await kvState(A.kv), db: await dbState(A.app) };
    dry = await runBackfill(A.app, { dryRun: true, tombstonesOut: tmpFile("dry.jsonl"), chunk: 2_000 });
    expect(dry.summary.tombstones).toBe(history.tombstones.size);
    expect(dry.summary.created).toBeGreaterThan(0);
    expect(dry.tombstonesOut).toBeNull();
    expect({ kv: await kvState(A.kv), db: await dbState(A.app) }).toEqual(before);
    expect(await A.app.devices.getJobState("backfill")).toBeNull();
    expect((await A.app.devices.history(history.rows[0]!.deviceId, { limit: 1 })).entries).toEqual([]);
  });

  it("the first run seeds every device and tombstones exactly the known duplicates", async () => {
    const first = await runBackfill(A.app, { tombstonesOut: firstOut, chunk: 2_000 });
    expect(first.summary).toMatchObject({
      candidate_rows: history.rows.length,
      duplicate_groups: history.duplicateGroups,
      tombstones: history.tombstones.size,
      skipped_in_kv: 0,
      conflicts: 0,
    });
    // What the dry run said it would do is what the run did.
    expect({ ...first.summary, elapsed_ms: 0 }).toEqual({ ...dry.summary, elapsed_ms: 0 });
    expect(tombstonePairs(firstOut)).toEqual(history.tombstones);

    const rows = await A.app.devices.listDevices({ limit: 1_000_000 });
    expect(new Map(rows.filter((r) => r.mergedInto !== null).map((r) => [r.deviceId, r.mergedInto]))).toEqual(
      history.tombstones,
    );
    expect((await A.app.devices.listTombstones({ limit: 1_000_000 })).length).toBe(history.tombstones.size);

    const own = await owners(A.kv);
    const at = (kind: string, value: string) => own.get(keyPath(A.app.config.namespace, { kind, value } as never));
    for (const [retired, canonical] of history.tombstones) expect(at("device-id", retired)).toBe(canonical);
    const sharedMac = new Set(history.vetoed.map(([, b]) => b));
    for (const r of history.rows) {
      const canonical = history.canonicalOf.get(r.deviceId);
      if (!canonical) continue;
      if (r.armisId) expect(at("armis-id", r.armisId)).toBe(canonical);
      for (const n of r.netboxIds) expect(at("netbox-id", n)).toBe(canonical);
      if (!sharedMac.has(r.deviceId)) for (const m of r.macs) expect(at("mac", m)).toBe(canonical);
    }
    // Devices whose Armis ids differ stay two devices, though they share a MAC (the newer keeps it).
    for (const [a, b] of history.vetoed) {
      expect([at("device-id", a), at("device-id", b)]).toEqual([a, b]);
    }
    for (const id of history.weakSeeded) expect(at("device-id", id)).toBe(id);
    expect(await A.app.devices.getJobState("backfill")).toBeNull();
  });

  it("a second run emits no tombstone and writes no binding", async () => {
    const kv = countingKv(A.kv);
    const out = tmpFile("second.jsonl");
    const second = await runBackfill({ ...A.app, kv }, { tombstonesOut: out, chunk: 2_000 });
    expect(second.summary).toMatchObject({
      tombstones: 0,
      created: 0,
      updated: 0,
      skipped_in_kv: history.tombstones.size,
      duplicate_groups: history.duplicateGroups,
    });
    expect((kv.calls.create ?? 0) + (kv.calls.update ?? 0) + (kv.calls.delete ?? 0)).toBe(0);
    expect(readJsonLines(out)).toEqual([]);
  });
});
