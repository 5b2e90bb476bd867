import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app/container.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { waitFor } from "../contract/kv.contract.js";
import { countingKv } from "../support/app.js";
import { forBackend } from "../support/backends.js";
import {
  backendEnv,
  directKv,
  serviceConfig,
  sharedKv,
  startService,
  tempDir,
  type Service,
} from "../support/service.js";

const device = (i: number, ip = `10.1.${i >> 8}.${i & 255}`) => ({
  device_id: `p:${ip}`,
  ip,
  partition: "p",
  mac: `02:00:00:01:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
  hostname: `host-${i}`,
  source: "armis",
  metadata: { armis_device_id: `B-${i}` },
});

const DEVICES = 20;
const MAX = 12; // bindings the bounded instance may hold: fewer than three devices' worth

/**
 * IDMAP_CACHE_MAX_BINDINGS on every backend: the cache holds at most that many bindings, answers
 * nothing it does not hold (a miss is one batch read), stays coherent with another instance's writes
 * through the watch, and never changes an outcome.
 */
function boundedCacheSuite(backend: "memory" | "embedded" | "jetstream" | "etcd" | "redis"): void {
  describe(`bounded binding cache: ${backend}`, () => {
    const dirs = [tempDir("bounded-a"), tempDir("bounded-b")];
    let kv: IdentityKv;
    let counting: ReturnType<typeof countingKv>;
    let bounded: Service;
    let mirror: Service;
    const env = backendEnv(backend);

    beforeAll(async () => {
      const cfg = serviceConfig({ ...env, IDMAP_CACHE_MAX_BINDINGS: String(MAX) }, dirs[0]!.dir);
      kv = await directKv(cfg);
      counting = countingKv(sharedKv(kv));
      bounded = await startService(cfg, { kv: counting });
      mirror = await startService(serviceConfig(env, dirs[1]!.dir), { kv: sharedKv(kv) });
    }, 60_000);

    afterAll(async () => {
      await bounded?.close();
      await mirror?.close();
      await kv?.close();
      for (const d of dirs) d.remove();
    });

    const app = (): App => bounded.app;

    it("holds at most IDMAP_CACHE_MAX_BINDINGS bindings, and answers every device through the store", async () => {
      const created = await app().publish.publish(
        Array.from({ length: DEVICES }, (_, i) => device(i)),
        "t",
      );
      expect(created.map((r) => r.outcome)).toEqual(Array(DEVICES).fill("created"));
      expect(app().store.cache!.size).toBeLessThanOrEqual(MAX);
      expect(app().store.cache!.isMirror).toBe(false);
      for (let i = 0; i < DEVICES; i++) {
        const r = await app().lookup.lookup({ identityKeys: [{ kind: "armis-id", value: `B-${i}` }] });
        expect(r.found).toBe(true);
        expect(r.record?.canonicalDeviceId).toBe(device(i).device_id);
      }
      expect(app().store.cache!.size).toBeLessThanOrEqual(MAX);
    });

    it("a cold device seen again costs one batch read and no write; a hot one no KV call at all", async () => {
      // Device 0 was evicted long ago (its keys were the first in).
      counting.reset();
      const cold = await app().publish.publish([device(0)], "t");
      expect(cold[0]!.outcome).toBe("unchanged");
      expect(counting.calls).toEqual({ getMany: 1 });
      counting.reset();
      const hot = await app().publish.publish([device(0)], "t");
      expect(hot[0]!.outcome).toBe("unchanged");
      expect(counting.calls).toEqual({});
    });

    it("a binding it holds follows another instance's write through the watch", async () => {
      await app().publish.publish([device(1)], "t"); // device 1 is now hot here
      // The device's own record: a move rewrites its reverse index.
      const path = app().store.path({ kind: "device-id", value: device(1).device_id });
      const before = app().store.peekPath(path)!;
      const moved = await mirror.app.publish.publish([device(1, "10.9.0.1")], "other");
      expect(moved[0]!.outcome).toBe("updated");
      await waitFor(() => (app().store.peekPath(path)?.revision ?? 0) > before.revision, 10_000);
      // The moved device, answered here without a conflict: the cache saw the other instance's write.
      counting.reset();
      const again = await app().publish.publish([device(1, "10.9.0.1")], "t");
      expect(again[0]).toMatchObject({ outcome: "unchanged", canonical_device_id: device(1).device_id });
      expect(counting.calls.update ?? 0).toBe(0);
      const byNewIp = await app().lookup.lookup({ identityKeys: [{ kind: "partition-ip", value: "p:10.9.0.1" }] });
      expect(byNewIp.record?.canonicalDeviceId).toBe(device(1).device_id);
    });

    it("a key deleted by another instance is not answered from the cache", async () => {
      await app().publish.publish([device(2)], "t");
      const oldIp = app().store.path({ kind: "partition-ip", value: `p:${device(2).ip}` });
      expect(app().store.peekPath(oldIp)).toBeDefined();
      // The same source reports the device elsewhere: its old address binding is deleted.
      await mirror.app.publish.publish([device(2, "10.9.0.2")], "other");
      await waitFor(() => app().store.peekPath(oldIp) === undefined, 10_000);
      // Not held: a read of it goes to the store, which has no such binding.
      const key = { kind: "partition-ip", value: `p:${device(2).ip}` } as const;
      expect(app().store.cached(key)).toBeUndefined();
      expect(await app().store.get(key)).toBeNull();
    });
  });
}

for (const backend of ["memory", "embedded", "jetstream", "etcd", "redis"] as const)
  forBackend(backend, () => boundedCacheSuite(backend));
