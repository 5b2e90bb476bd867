import { afterEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import type { App } from "../../src/app/container.js";
import type { DeviceUpdate } from "../../src/domain/device-update.js";
import { countingKv, testApp } from "../support/app.js";

const armis = (id: string) => ({ armis_device_id: id });
let app: App | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const fleet = (n: number, moved = false): DeviceUpdate[] =>
  Array.from({ length: n }, (_, i) => {
    const ip = `10.1.${Math.floor(i / 200)}.${(i % 200) + (moved ? 100 : 1)}`;
    return {
      device_id: `p:${ip}`,
      ip,
      partition: "p",
      mac: `02:00:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
      metadata: armis(`A-${i}`),
      source: "armis",
    };
  });

describe("publish through the service", () => {
  it("an unchanged update costs no KV operation (the watch-coherent cache answers)", async () => {
    const kv = countingKv(new MemoryKv());
    ({ app } = await testApp({}, kv));
    const batch = fleet(200);
    const first = await app.publish.publish(batch, "test");
    expect(first.every((r) => r.outcome === "created")).toBe(true);
    kv.reset();
    const again = await app.publish.publish(batch, "test");
    expect(again.every((r) => r.outcome === "unchanged")).toBe(true);
    expect(kv.calls).toEqual({});
  });

  it("a changed update costs at most its number of keys plus one writes, and no reads", async () => {
    const kv = countingKv(new MemoryKv());
    ({ app } = await testApp({}, kv));
    await app.publish.publish(fleet(50), "test");
    kv.reset();
    const moved = await app.publish.publish(fleet(50, true), "test");
    expect(moved.every((r) => r.outcome === "updated" && r.tombstone)).toBe(true);
    const writes = (kv.calls.create ?? 0) + (kv.calls.update ?? 0) + (kv.calls.delete ?? 0);
    const keysPerUpdate = 5; // device-id, ip, partition-ip, armis-id, mac
    expect(writes / 50).toBeLessThanOrEqual(keysPerUpdate + 1);
    expect(kv.calls.get ?? 0).toBe(0);
    expect(kv.calls.getMany ?? 0).toBe(0);
  });

  it("a device row seen again is left alone for five minutes, then only its sighting moves on; a change rewrites it", async () => {
    let clock: Awaited<ReturnType<typeof testApp>>["clock"];
    ({ app, clock } = await testApp());
    const u = {
      device_id: "p:10.2.0.1",
      ip: "10.2.0.1",
      partition: "p",
      mac: "02:00:00:00:aa:01",
      metadata: armis("A-row"),
      source: "armis",
    };
    const [created] = await app.publish.publish([u], "test");
    const id = created!.canonical_device_id!;
    const t0 = (await app.devices.getDevice(id))!.lastSeenMs;
    clock.advance(60_000);
    await app.publish.publish([{ ...u, source: "poller" }], "test");
    expect(await app.devices.getDevice(id)).toMatchObject({ lastSeenMs: t0, source: "armis" });
    clock.advance(5 * 60_000);
    await app.publish.publish([{ ...u, source: "poller" }], "test");
    const touched = await app.devices.getDevice(id);
    expect(touched).toMatchObject({ lastSeenMs: t0 + 6 * 60_000, source: "poller", ip: "10.2.0.1", firstSeenMs: t0 });
    expect((await app.devices.findByIdentity({ kind: "mac", value: touched!.macs[0]! }))?.deviceId).toBe(id);
    // Touched and then changed in one batch (the touch a minute older): the row ends as the change wrote it.
    clock.advance(6 * 60_000);
    const results = await app.publish.publish(
      [
        { ...u, source: "agent", timestamp: t0 + 11 * 60_000 },
        { ...u, device_id: "p:10.2.0.2", ip: "10.2.0.2", timestamp: t0 + 12 * 60_000 },
      ],
      "test",
    );
    expect(results[1]?.outcome).toBe("updated");
    expect(await app.devices.getDevice(id)).toMatchObject({ ip: "10.2.0.2", lastSeenMs: t0 + 12 * 60_000 });
    expect((await app.devices.findByIdentity({ kind: "ip", value: "10.2.0.2" }))?.deviceId).toBe(id);
    expect(await app.devices.findByIdentity({ kind: "ip", value: "10.2.0.1" })).toBeNull();
  });

  it("with a bounded cache, the recorder forgets the devices it wrote longest ago: those are written whole again", async () => {
    let clock: Awaited<ReturnType<typeof testApp>>["clock"];
    // Two devices remembered at most: the first of three is forgotten once the third is written.
    ({ app, clock } = await testApp({ IDMAP_CACHE_MAX_BINDINGS: "2" }));
    const device = (n: number) => ({
      device_id: `p:10.3.0.${n}`,
      ip: `10.3.0.${n}`,
      partition: "p",
      mac: `02:00:00:00:bb:0${n}`,
      metadata: armis(`A-bound-${n}`),
      source: "armis",
    });
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push((await app.publish.publish([device(n)], "test"))[0]!.canonical_device_id!);
    const t0 = (await app.devices.getDevice(ids[0]!))!.lastSeenMs;
    clock.advance(60_000);
    // Device 3 first: remembered, it is left alone for five minutes, as without a bound. Device 1,
    // forgotten, has its row rewritten (its sighting and source move on).
    await app.publish.publish(
      [3, 1].map((n) => ({ ...device(n), source: "poller" })),
      "test",
    );
    expect(await app.devices.getDevice(ids[0]!)).toMatchObject({ lastSeenMs: t0 + 60_000, source: "poller" });
    expect(await app.devices.getDevice(ids[2]!)).toMatchObject({ lastSeenMs: t0, source: "armis" });
  });

  it("updates of one device in one batch are applied in order; unrelated ones in parallel", async () => {
    ({ app } = await testApp());
    const r = await app.publish.publish(
      [
        { device_id: "p:10.0.0.5", ip: "10.0.0.5", partition: "p", metadata: armis("A1"), source: "armis" },
        { device_id: "p:10.0.0.9", ip: "10.0.0.9", partition: "p", metadata: armis("A1"), source: "armis" },
        { device_id: "p:10.0.0.7", ip: "10.0.0.7", partition: "p", metadata: armis("A2"), source: "armis" },
      ],
      "test",
    );
    expect(r.map((x) => x.canonical_device_id)).toEqual(["p:10.0.0.5", "p:10.0.0.5", "p:10.0.0.7"]);
    expect(r[1]!.tombstone).toEqual({ device_id: "p:10.0.0.9", merged_into: "p:10.0.0.5" });
  });

  it("records device rows and an audit trail of binding changes", async () => {
    ({ app } = await testApp());
    await app.publish.publish(
      [{ device_id: "p:10.0.0.5", ip: "10.0.0.5", partition: "p", metadata: armis("A1"), source: "armis" }],
      "writer-1",
    );
    await app.publish.publish(
      [{ device_id: "p:10.0.0.9", ip: "10.0.0.9", partition: "p", metadata: armis("A1"), source: "armis" }],
      "writer-1",
    );
    const row = await app.devices.getDevice("p:10.0.0.9");
    expect(row?.mergedInto).toBe("p:10.0.0.5");
    const h = await app.devices.history("p:10.0.0.5", { limit: 100 });
    const reasons = h.entries.map((e) => `${e.reason}:${e.key.kind}:${e.key.value}`);
    expect(reasons).toContain("merged:device-id:p:10.0.0.9");
    expect(reasons).toContain("moved:partition-ip:p:10.0.0.5");
    expect(reasons).toContain("created:armis-id:A1");
    expect(h.entries.every((e) => e.actor === "writer-1")).toBe(true);
    expect(h.entries[0]!.id).toBeGreaterThan(h.entries[h.entries.length - 1]!.id);
  });
});
