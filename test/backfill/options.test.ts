import { writeFileSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { TokenBucket } from "../../src/app/backfill/backfill-kv.js";
import { runBackfill } from "../../src/app/backfill/backfill.js";
import type { App } from "../../src/app/container.js";
import { InvalidArgument } from "../../src/domain/errors.js";
import { countingKv, testApp } from "../support/app.js";
import { HOUR, NOW, owner, readJsonLines, removeScratch, row, tmpFile, tombstonePairs } from "./support.js";

afterAll(removeScratch);

let app: App | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function setup() {
  const kv = countingKv(new MemoryKv());
  ({ app } = await testApp({ CANONICAL_IDENTITY_MAP_ENABLED: "off" }, kv));
  return { app: app!, kv };
}

const lines = (...xs: unknown[]) => `${xs.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join("\n")}\n`;

describe("backfill --from FILE", () => {
  it("reads sightings with their timestamps next to the relational rows; ids only the file knows get rows", async () => {
    const { app, kv } = await setup();
    await app.devices.upsertDevices([
      row("p:10.0.0.1", { partition: "p", ip: "10.0.0.1", armisId: "A1", source: "armis", lastSeenMs: NOW - 2 * HOUR }),
    ]);
    const file = tmpFile("history.jsonl");
    writeFileSync(
      file,
      lines(
        {
          device_id: "p:10.0.0.7",
          ip: "10.0.0.7",
          partition: "p",
          source: "armis",
          metadata: { armis_device_id: "A1" },
          timestamp: new Date(NOW - HOUR).toISOString(),
        },
        "",
        { device_id: "agent-9", mac: "02-00-00-00-00-09", source: "agent", timestamp: NOW - 3 * HOUR },
        {
          device_id: "agent-9",
          mac: "02:00:00:00:00:09",
          hostname: "older",
          source: "agent",
          timestamp: NOW - 4 * HOUR,
        },
        { device_id: "no-time", mac: "02:00:00:00:00:10", source: "agent" },
      ),
    );
    const out = tmpFile("t.jsonl");
    const r = await runBackfill(app, { from: file, tombstonesOut: out });
    expect(r).toMatchObject({ storeRows: 1, fileLines: 4, fileSkipped: 1 });
    expect(r.summary).toMatchObject({ candidate_rows: 3, duplicate_groups: 1, tombstones: 1 });
    // The file's sighting of A1 is the newest: it is the canonical device.
    expect(tombstonePairs(out)).toEqual(new Map([["p:10.0.0.1", "p:10.0.0.7"]]));
    expect(await owner(app, kv, "armis-id", "A1")).toBe("p:10.0.0.7");
    expect(await owner(app, kv, "mac", "02:00:00:00:00:09")).toBe("agent-9");
    expect((await app.devices.getDevice("p:10.0.0.1"))?.mergedInto).toBe("p:10.0.0.7");
    expect(await app.devices.getDevice("p:10.0.0.7")).toMatchObject({ armisId: "A1", mergedInto: null });
    expect(await app.devices.getDevice("agent-9")).toMatchObject({ macs: ["02:00:00:00:00:09"], hostname: "" });
    expect(await app.devices.getDevice("no-time")).toBeNull();

    kv.reset();
    const again = await runBackfill(app, { from: file, tombstonesOut: tmpFile("t2.jsonl") });
    expect(again.summary).toMatchObject({ tombstones: 0, created: 0, updated: 0, skipped_in_kv: 1 });
    expect((kv.calls.create ?? 0) + (kv.calls.update ?? 0)).toBe(0);
  });

  it("refuses a line that is not a JSON object, naming the file and line", async () => {
    const { app } = await setup();
    const file = tmpFile("bad.jsonl");
    writeFileSync(file, lines({ device_id: "x", mac: "02:00:00:00:00:01", timestamp: NOW }, "{oops"));
    const e = await runBackfill(app, { from: file, tombstonesOut: tmpFile("t.jsonl") }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InvalidArgument);
    expect((e as InvalidArgument).field).toBe(`${file}:2`);
  });
});

describe("backfill --partition", () => {
  it("works on the named partitions only (a group belongs to its canonical device's partition)", async () => {
    const { app, kv } = await setup();
    await app.devices.upsertDevices([
      row("a:10.0.0.1", { partition: "a", ip: "10.0.0.1", armisId: "A1", lastSeenMs: NOW - HOUR }),
      row("a:10.0.0.2", { partition: "a", ip: "10.0.0.2", armisId: "A1", lastSeenMs: NOW - 2 * HOUR }),
      row("b:10.0.0.1", { partition: "b", ip: "10.0.0.1", armisId: "B1", lastSeenMs: NOW - HOUR }),
      row("b:10.0.0.2", { partition: "b", ip: "10.0.0.2", armisId: "B1", lastSeenMs: NOW - 2 * HOUR }),
      // Seen in both partitions: one device (Armis ids are global), whose newest sighting is in b.
      row("a:10.0.0.3", { partition: "a", ip: "10.0.0.3", armisId: "X1", lastSeenMs: NOW - 3 * HOUR }),
      row("b:10.0.0.3", { partition: "b", ip: "10.0.0.3", armisId: "X1", lastSeenMs: NOW - HOUR }),
    ]);
    const a = await runBackfill(app, { partitions: ["a"], tombstonesOut: tmpFile("a.jsonl") });
    expect(readJsonLines(a.tombstonesOut!).map((t) => t.device_id)).toEqual(["a:10.0.0.2"]);
    expect(await owner(app, kv, "armis-id", "B1")).toBeUndefined();
    const b = await runBackfill(app, { partitions: ["b"], tombstonesOut: tmpFile("b.jsonl") });
    expect(tombstonePairs(b.tombstonesOut!)).toEqual(
      new Map([
        ["b:10.0.0.2", "b:10.0.0.1"],
        ["a:10.0.0.3", "b:10.0.0.3"],
      ]),
    );
  });
});

describe("the token bucket", () => {
  it("lets a burst through, then spaces takes at the rate", async () => {
    const now = 0;
    const bucket = new TokenBucket(100, 5, () => now);
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) await bucket.take(1);
    expect(performance.now() - t0).toBeLessThan(5);
    // The burst is spent (50 ms of credit used up at t=0): ten more tokens at 100/s wait until
    // 50 + 100 - 50 (the burst allowance) = 100 ms.
    const start = performance.now();
    await bucket.take(10);
    expect(performance.now() - start).toBeGreaterThanOrEqual(95);
    expect(performance.now() - start).toBeLessThan(250);
  });
});
