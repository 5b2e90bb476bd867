import { describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import type { DeviceUpdate } from "../../src/domain/device-update.js";
import { testApp } from "../support/app.js";

/** A small churn story: DHCP moves, a sweep, a newcomer on a reused address, a merge, a veto. */
function scenario(): DeviceUpdate[][] {
  const a = (id: string, ip: string, aid: string, mac: string) => ({
    device_id: id,
    ip,
    partition: "p",
    mac,
    metadata: { armis_device_id: aid },
    source: "armis",
  });
  return [
    [
      a("p:10.0.0.5", "10.0.0.5", "A1", "02:00:00:00:00:01"),
      a("p:10.0.0.6", "10.0.0.6", "A2", "02:00:00:00:00:02"),
      { ip: "10.0.0.8", partition: "p", source: "sweep" },
    ],
    [a("p:10.0.0.9", "10.0.0.9", "A1", "02:00:00:00:00:01"), { ip: "10.0.0.5", partition: "p", source: "sweep" }],
    [
      a("p:10.0.0.5", "10.0.0.5", "A3", "02:00:00:00:00:03"),
      { device_id: "agent-1", mac: "02:00:00:00:00:02", source: "agent" },
    ],
    [
      { device_id: "agent-1", mac: "02:00:00:00:00:02", metadata: { armis_device_id: "A2" }, source: "agent" },
      a("p:10.0.0.6", "10.0.0.6", "A4", "02:00:00:00:00:02"),
    ],
    [
      { ip: "10.0.0.9", partition: "p", source: "sweep" },
      { ip: "10.0.0.5", partition: "p", source: "sweep" },
    ],
  ];
}

async function run(mode: "on" | "off") {
  const kv = new MemoryKv();
  const { app, clock } = await testApp({ CANONICAL_IDENTITY_MAP_ENABLED: mode }, kv);
  const ids: (string | null)[] = [];
  const tombstones: string[] = [];
  for (const batch of scenario()) {
    clock.advance(60_000);
    for (const r of await app.publish.publish(batch, "test")) {
      ids.push(r.canonical_device_id);
      if (r.tombstone) tombstones.push(`${r.tombstone.device_id}->${r.tombstone.merged_into}`);
    }
  }
  const lookups = [];
  for (const k of [
    { kind: "mac", value: "02:00:00:00:00:01" },
    { kind: "partition-ip", value: "p:10.0.0.5" },
    { kind: "armis-id", value: "A2" },
  ]) {
    lookups.push((await app.lookup.lookup({ identityKeys: [k] })).record?.canonicalDeviceId);
  }
  const kvEntries = (await kv.list("")).entries.length;
  await app.close();
  return { ids, tombstones, lookups, kvEntries };
}

describe("CANONICAL_IDENTITY_MAP_ENABLED", () => {
  it("off and on give the same canonical ids; off writes nothing to the KV", async () => {
    const on = await run("on");
    const off = await run("off");
    expect(off.ids).toEqual(on.ids);
    expect(off.tombstones).toEqual(on.tombstones);
    expect(off.lookups).toEqual(on.lookups);
    expect(on.kvEntries).toBeGreaterThan(0);
    expect(off.kvEntries).toBe(0);
    // The story's expected shape, so the comparison is not between two wrong answers.
    expect(on.tombstones).toContain("p:10.0.0.9->p:10.0.0.5");
    expect(on.tombstones).toContain("agent-1->p:10.0.0.6");
    expect(on.ids.filter((x) => x === "p:10.0.0.5").length).toBeGreaterThanOrEqual(2);
  });
});
