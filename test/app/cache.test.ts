import { describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { countingKv, testApp } from "../support/app.js";
import { waitFor } from "../contract/kv.contract.js";

const laptop = {
  device_id: "p:10.0.0.5",
  ip: "10.0.0.5",
  partition: "p",
  mac: "02:00:00:00:00:01",
  metadata: { armis_device_id: "A1" },
  source: "armis",
};

describe("the local binding cache", () => {
  it("stays coherent across instances through the watch: another instance's write is seen without a KV read", async () => {
    const shared = new MemoryKv();
    const a = await testApp({}, shared);
    const kvB = countingKv(shared);
    const b = await testApp({}, kvB);
    try {
      await a.app.publish.publish([laptop], "a");
      await waitFor(() => b.app.store.cache!.peek("device_canonical_map/armis-id/A1") !== undefined);
      kvB.reset();
      const r = await b.app.publish.publish([laptop], "b");
      expect(r[0]!.outcome).toBe("unchanged");
      const look = await b.app.lookup.lookup({ identityKeys: [{ kind: "mac", value: "02:00:00:00:00:01" }] });
      expect(look.resolvedVia).toBe("cache");
      expect(kvB.calls).toEqual({});
    } finally {
      await a.app.close();
      await b.app.close();
    }
  });

  it("a stale cache costs a conflict and a re-read, never a wrong binding", async () => {
    const shared = new MemoryKv();
    const a = await testApp({}, shared);
    const b = await testApp({}, shared);
    try {
      await a.app.publish.publish([laptop], "a");
      await waitFor(() => b.app.store.cache!.peek("device_canonical_map/armis-id/A1") !== undefined);
      // Stop B's watch so its mirror goes stale, then move the device through A.
      await (b.app.store.cache as unknown as { handle: { stop(): Promise<void> } }).handle.stop();
      await a.app.publish.publish([{ ...laptop, device_id: "p:10.0.0.9", ip: "10.0.0.9" }], "a");
      const r = await b.app.publish.publish([{ ...laptop, device_id: "p:10.0.0.7", ip: "10.0.0.7" }], "b");
      expect(r[0]).toMatchObject({ canonical_device_id: "p:10.0.0.5", outcome: "updated" });
      const dev = await a.app.lookup.device("p:10.0.0.5");
      const addrs = dev.keys.filter((k) => k.kind === "partition-ip").map((k) => k.value);
      expect(addrs).toEqual(["p:10.0.0.7"]);
      const metrics = await b.app.metrics.registry.getSingleMetricAsString("identitymap_conflict_total");
      expect(metrics).toMatch(/reason="revision_mismatch"\} [1-9]/);
    } finally {
      await a.app.close();
      await b.app.close();
    }
  });
});
