import { describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { encodeRecord } from "../../src/adapters/proto/record-codec.js";
import { BindingCache } from "../../src/app/bindings/binding-cache.js";
import { CensusRefresher } from "../../src/app/bindings/binding-census.js";
import { decodeBinding } from "../../src/app/bindings/binding-store.js";
import { silentLogger } from "../../src/app/logger.js";
import { keyPath } from "../../src/domain/key-path.js";
import type { CanonicalRecord } from "../../src/domain/record.js";
import { waitFor } from "../contract/kv.contract.js";

const record = (id: string, expiresAtMs = 0): CanonicalRecord => ({
  canonicalDeviceId: id,
  partition: "p",
  metadataHash: "h",
  updatedAtMs: 1,
  attributes: {},
  source: "s",
  authority: false,
  expiresAtMs,
  operationId: "o",
  keys: [],
});

describe("the bindings census", () => {
  it("counts a big map in the background, in slices, and serves the last finished count", async () => {
    const kv = new MemoryKv();
    const ns = "census";
    const n = 60_000; // above the on-the-spot limit
    for (let i = 0; i < n; i++) {
      const id = `d${i}`;
      if (i % 2 === 0) await kv.create(keyPath(ns, { kind: "device-id", value: id }), encodeRecord(record(id)));
      else
        await kv.create(
          keyPath(ns, { kind: "ip", value: `10.0.${i >> 8}.${i & 255}` }),
          encodeRecord(record(`d${i - 1}`, i % 4 === 1 ? 1 : 0)),
        );
    }
    const cache = new BindingCache(kv, `${ns}/`, decodeBinding, silentLogger);
    await cache.start();
    const census = new CensusRefresher(cache, ns, () => 1_000, 60_000);
    try {
      const first = census.current(); // not counted yet: zeros, and a background count starts
      expect(first.devices).toBe(0);
      await waitFor(() => census.current().devices > 0, 20_000);
      const c = census.current();
      expect(c.devices).toBe(n / 2);
      expect(c.live["device-id"]).toBe(n / 2);
      expect(c.live.ip + c.expired.ip).toBe(n / 2);
      expect(c.expired.ip).toBe(n / 4);
    } finally {
      census.stop();
      await cache.stop();
    }
  }, 60_000);
});
