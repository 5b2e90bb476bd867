import { afterAll, afterEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { runBackfill } from "../../src/app/backfill/backfill.js";
import type { App } from "../../src/app/container.js";
import { countingKv, testApp } from "../support/app.js";
import { HOUR, NOW, owner, readJsonLines, removeScratch, row, tmpFile } from "./support.js";

afterAll(removeScratch);

/** The reference's backfill tests (go-reference.md §8.5), as behaviour of this backfill. */
let app: App | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const canonical = row("default:canonical", {
  partition: "default",
  ip: "10.0.0.1",
  armisId: "ARM-1",
  source: "armis",
  lastSeenMs: NOW - HOUR,
});
const duplicate = row("default:duplicate", {
  partition: "default",
  ip: "10.0.0.2",
  armisId: "ARM-1",
  source: "armis",
  lastSeenMs: NOW - 2 * HOUR,
});

async function setup(flag = "off") {
  const kv = countingKv(new MemoryKv());
  ({ app } = await testApp({ CANONICAL_IDENTITY_MAP_ENABLED: flag }, kv));
  return { app: app!, kv };
}

describe("backfill: the reference's cases", () => {
  it("--seed-kv-only seeds the canonical device's four keys and publishes no tombstone", async () => {
    const { app, kv } = await setup();
    await app.devices.upsertDevices([canonical, duplicate]);
    kv.reset();
    const out = tmpFile("t.jsonl");
    const r = await runBackfill(app, { seedKvOnly: true, tombstonesOut: out });
    // device-id, ip, partition-ip, armis-id of the canonical row; nothing else.
    expect(kv.calls.create).toBe(4);
    expect(kv.calls.update ?? 0).toBe(0);
    expect(r.summary).toMatchObject({ candidate_rows: 2, duplicate_groups: 1, tombstones: 0, created: 4, updated: 0 });
    expect(await owner(app, kv, "armis-id", "ARM-1")).toBe("default:canonical");
    expect(await owner(app, kv, "partition-ip", "default:10.0.0.1")).toBe("default:canonical");
    expect(await owner(app, kv, "device-id", "default:duplicate")).toBeUndefined();
    expect((await app.devices.getDevice("default:duplicate"))?.mergedInto).toBeNull();
    expect(r.tombstonesOut).toBeNull();
  });

  it("an outdated map is updated in place and the duplicate is tombstoned once", async () => {
    const { app, kv } = await setup("on");
    // The map knows the device from an older sighting: same id, stale identity (old hostname).
    await app.publish.publish(
      [
        {
          device_id: "default:canonical",
          ip: "10.0.0.1",
          partition: "default",
          hostname: "old-name",
          source: "armis",
          metadata: { armis_device_id: "ARM-1" },
          timestamp: NOW - 3 * HOUR,
        },
      ],
      "test",
    );
    await app.devices.upsertDevices([{ ...canonical, hostname: "new-name" }, duplicate]);
    kv.reset();
    const out = tmpFile("t.jsonl");
    const r = await runBackfill(app, { tombstonesOut: out });
    // The four keys are rewritten (update at their revision, none created); the duplicate's redirect
    // is the one create, and the device record's index takes it (one more update).
    expect(kv.calls.create).toBe(1);
    expect(kv.calls.update).toBe(5);
    expect(r.summary).toMatchObject({ tombstones: 1, created: 1, updated: 5 });
    expect(readJsonLines(out)).toEqual([
      expect.objectContaining({
        device_id: "default:duplicate",
        merged_into: "default:canonical",
        identity_key: { kind: "armis-id", value: "ARM-1" },
      }),
    ]);
    expect(await owner(app, kv, "device-id", "default:duplicate")).toBe("default:canonical");
    expect((await app.devices.getDevice("default:duplicate"))?.mergedInto).toBe("default:canonical");
    const lookup = await app.lookup.lookup({ identityKeys: [{ kind: "armis-id", value: "ARM-1" }] });
    expect(lookup.record?.attributes.hostname).toBe("new-name");
  });

  it("deliberate difference: when the map already names the device by another id, that id stays (ids are permanent)", async () => {
    const { app, kv } = await setup("on");
    await app.publish.publish(
      [
        {
          device_id: "default:stale",
          partition: "default",
          source: "armis",
          metadata: { armis_device_id: "ARM-1" },
          timestamp: NOW - 3 * HOUR,
        },
      ],
      "test",
    );
    await app.devices.upsertDevices([canonical, duplicate]);
    const out = tmpFile("t.jsonl");
    const r = await runBackfill(app, { tombstonesOut: out });
    expect(r.summary.tombstones).toBe(2);
    expect(
      readJsonLines(out)
        .map((t) => `${t.device_id}->${t.merged_into}`)
        .sort(),
    ).toEqual(["default:canonical->default:stale", "default:duplicate->default:stale"]);
    expect(await owner(app, kv, "armis-id", "ARM-1")).toBe("default:stale");
  });

  it("the IP alias pass skips what the map already holds: a second run writes nothing and emits nothing", async () => {
    const { app, kv } = await setup();
    const claimant = row("default:canonical", {
      partition: "default",
      ip: "10.0.0.1",
      armisId: "ARM-1",
      source: "armis",
      metadata: { all_ips: "10.0.0.2" },
    });
    const target = row("default:10.0.0.2", {
      partition: "default",
      ip: "10.0.0.2",
      source: "sweep",
      lastSeenMs: NOW - 2 * HOUR,
    });
    await app.devices.upsertDevices([claimant, target]);
    const first = await runBackfill(app, { tombstonesOut: tmpFile("t1.jsonl") });
    expect(first.aliasTombstones).toBe(1);
    expect(first.summary.tombstones).toBe(1);
    expect(readJsonLines(first.tombstonesOut!)).toEqual([
      expect.objectContaining({
        device_id: "default:10.0.0.2",
        merged_into: "default:canonical",
        identity_key: { kind: "partition-ip", value: "default:10.0.0.2" },
      }),
    ]);
    expect(await owner(app, kv, "partition-ip", "default:10.0.0.2")).toBe("default:canonical");
    expect(await owner(app, kv, "device-id", "default:10.0.0.2")).toBe("default:canonical");

    kv.reset();
    const second = await runBackfill(app, { tombstonesOut: tmpFile("t2.jsonl") });
    expect(kv.calls.create ?? 0).toBe(0);
    expect(kv.calls.update ?? 0).toBe(0);
    expect(second.summary).toMatchObject({ tombstones: 0, skipped_in_kv: 1, created: 0, updated: 0 });
    expect(readJsonLines(second.tombstonesOut!)).toEqual([]);
  });
});
