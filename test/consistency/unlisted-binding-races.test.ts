import { afterEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { encodeRecord } from "../../src/adapters/proto/record-codec.js";
import { keyPath } from "../../src/domain/key-path.js";
import type { IdentityKv, KvChange } from "../../src/ports/identity-kv.js";
import { forBackend } from "../support/backends.js";
import { expectConsistent } from "../support/check.js";
import { gatedKv } from "../support/gated-kv.js";
import { postUpdates, readBinding, sharedKv, twoOnOneStore, type Service } from "../support/service.js";

/** A KV whose watch can be paused: the changes wait, in order, until `resume` (a cache that lags). */
function laggingKv(inner: IdentityKv): IdentityKv & { pause(): void; resume(): void } {
  let paused = false;
  const held: (() => void)[] = [];
  const lagging = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === "pause") return () => (paused = true);
      if (prop === "resume")
        return () => {
          paused = false;
          for (const deliver of held.splice(0)) deliver();
        };
      if (prop === "watch")
        return (prefix: string, after: number, onChange: (c: KvChange) => void, onError: (e: Error) => void) =>
          target.watch(prefix, after, (c) => (paused ? held.push(() => onChange(c)) : onChange(c)), onError);
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return lagging as IdentityKv & { pause(): void; resume(): void };
}

/**
 * Rule 2 of the checker (a key bound to a device lists it) under the last race the etcd cluster
 * test found (issue 12): a decision drops an address from the device's index because its view says
 * the key is not bound, while another instance binds it. The record's CAS does not cover the key.
 */
forBackend("memory", () => {
  describe("an address dropped from the index while another instance binds it", () => {
    const open: Service[] = [];
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
    });

    it("a new device's key written after another instance's newer report stays listed", async () => {
      const kv = new MemoryKv();
      const gated = gatedKv(sharedKv(kv));
      const { config, x, y } = await twoOnOneStore(gated, sharedKv(kv));
      open.push(x, y);
      const t0 = Date.now() - 10 * 60_000;
      const device = { device_id: "race-new-1", mac: "02:00:00:00:04:01", source: "agent", partition: "p" };

      // x creates the device: its record first, then its keys; the first address waits at the gate.
      const gate = gated.hold("create", "/ip/10.8.0.1");
      const pending = postUpdates(x.rest, [{ ...device, ip: "10.8.0.1", timestamp: t0 }]);
      await gate.reached;
      // y reports the device at a newer address meanwhile: the old one is not bound (yet).
      const newer = await postUpdates(y.rest, [{ ...device, ip: "10.8.0.2", timestamp: t0 + 60_000 }]);
      expect(newer.body.results[0].outcome).toBe("updated");
      gate.release();
      expect((await pending).status).toBe(200);

      const late = await readBinding(kv, config.namespace, { kind: "ip", value: "10.8.0.1" });
      expect(late?.record.canonicalDeviceId).toBe("race-new-1");
      await expectConsistent(kv, config.namespace, [x.app.devices, y.app.devices]);
    });

    it("a cache that has not seen another instance's binding does not drop it from the index", async () => {
      const kv = new MemoryKv();
      const lagging = laggingKv(sharedKv(kv));
      const { config, x, y } = await twoOnOneStore(sharedKv(kv), lagging);
      open.push(x, y);
      const t0 = Date.now() - 10 * 60_000;
      const device = { device_id: "race-stale-1", mac: "02:00:00:00:04:02", source: "agent", partition: "p" };
      expect((await postUpdates(x.rest, [{ ...device, ip: "10.8.1.1", timestamp: t0 }])).status).toBe(200);
      // The device moves: 10.8.1.1 is deleted and stays listed, asserted by no source, until dropped.
      expect((await postUpdates(x.rest, [{ ...device, ip: "10.8.1.2", timestamp: t0 + 60_000 }])).status).toBe(200);
      const old = { kind: "ip" as const, value: "10.8.1.1" };
      expect(await readBinding(kv, config.namespace, old)).toBeNull();
      const record = (await readBinding(kv, config.namespace, { kind: "device-id", value: "race-stale-1" }))!;
      expect(record.record.keys.some((k) => k.kind === "ip" && k.value === old.value && k.sources.length === 0)).toBe(
        true,
      );

      // Another instance binds the old address to the device again; y's cache does not see it yet.
      lagging.pause();
      const bound = { ...record.record, keys: [], updatedAtMs: t0 + 90_000, expiresAtMs: Date.now() + 3_600_000 };
      await kv.create(keyPath(config.namespace, old), encodeRecord(bound));
      // y rewrites the device's record (a new hostname) with its cache's view of the old address.
      const renamed = await postUpdates(y.rest, [
        { ...device, ip: "10.8.1.2", hostname: "h2", timestamp: t0 + 120_000 },
      ]);
      expect(renamed.body.results[0].outcome).toBe("updated");
      lagging.resume();

      const after = (await readBinding(kv, config.namespace, { kind: "device-id", value: "race-stale-1" }))!;
      expect(after.record.keys.some((k) => k.kind === "ip" && k.value === old.value)).toBe(true);
    });
  });
});
