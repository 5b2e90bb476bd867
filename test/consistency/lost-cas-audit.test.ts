import { afterEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { silentLogger } from "../../src/app/logger.js";
import { PublishService } from "../../src/app/publish/publish-service.js";
import { forBackend } from "../support/backends.js";
import { expectConsistent } from "../support/check.js";
import { gatedKv } from "../support/gated-kv.js";
import { postUpdates, readBinding, sharedKv, twoOnOneStore, type Service } from "../support/service.js";

/**
 * Defect 3 of issue 12, forced deterministically: an attempt binds the keys of a new address, loses
 * the CAS on the device record to another instance that reported the device somewhere newer, and its
 * retry refuses the address as out of order and answers `unchanged`. The first attempt's bindings
 * must not stay behind, unlisted and unaudited.
 */
forBackend("memory", () => {
  describe("a publish whose retry decides differently from its first attempt", () => {
    const open: Service[] = [];
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
    });
    /** Two instances on one memory store; x's KV calls can be held at a gate. */
    const twoInstances = async () => {
      const kv = new MemoryKv();
      const gated = gatedKv(sharedKv(kv));
      const { config, x, y } = await twoOnOneStore(gated, sharedKv(kv));
      open.push(x, y);
      return { kv, config, gated, x, y };
    };

    it("leaves no binding of the first attempt unlisted or unaudited", async () => {
      const { kv, config, gated, x, y } = await twoInstances();
      const t0 = Date.now() - 10 * 60_000;
      const device = { device_id: "lost-cas-1", mac: "02:00:00:00:03:01", source: "agent", partition: "p" };
      expect((await postUpdates(x.rest, [{ ...device, ip: "10.7.0.1", timestamp: t0 }])).status).toBe(200);

      const gate = gated.hold("update", "/device-id/lost-cas-1");
      const pending = postUpdates(x.rest, [{ ...device, ip: "10.7.0.2", timestamp: t0 + 60_000 }]);
      await gate.reached;
      const newer = await postUpdates(y.rest, [{ ...device, ip: "10.7.0.3", timestamp: t0 + 120_000 }]);
      expect(newer.body.results[0].outcome).toBe("updated");
      gate.release();
      const late = await pending;
      expect(late.status).toBe(200);
      expect(late.body.results[0].outcome).toBe("unchanged");

      // The refused address is not bound to the device, and the map and both audit trails agree.
      expect(await readBinding(kv, config.namespace, { kind: "ip", value: "10.7.0.2" })).toBeNull();
      await expectConsistent(kv, config.namespace, [x.app.devices, y.app.devices]);
    });

    it("an update that gives up (retries exhausted) leaves no binding of its attempts outside the device's index", async () => {
      const { kv, config, gated, x, y } = await twoInstances();
      // x's publisher gives up at the first conflict.
      const impatient = new PublishService({
        store: x.app.store,
        devices: x.app.devices,
        clock: x.app.clock,
        metrics: x.app.metrics,
        log: silentLogger,
        policy: x.app.policy,
        backoff: { initialMs: 1, maxMs: 1, multiplier: 1, jitter: 0, budgetMs: 1 },
      });
      const t0 = Date.now() - 10 * 60_000;
      const device = { device_id: "lost-cas-2", mac: "02:00:00:00:03:02", source: "agent", partition: "p" };
      expect((await postUpdates(x.rest, [{ ...device, ip: "10.7.1.1", timestamp: t0 }])).status).toBe(200);

      const gate = gated.hold("update", "/device-id/lost-cas-2");
      const pending = impatient.publish([{ ...device, ip: "10.7.1.2", timestamp: t0 + 60_000 }], "test");
      await gate.reached;
      const newer = await postUpdates(y.rest, [{ ...device, ip: "10.7.1.3", timestamp: t0 + 120_000 }]);
      expect(newer.body.results[0].outcome).toBe("updated");
      gate.release();
      const [gaveUp] = await pending;
      expect(gaveUp?.outcome).toBe("failed");
      expect(gaveUp?.error?.code).toBe("retry_exhausted");

      // The address its first attempt bound is undone, and the map and both audit trails agree.
      expect(await readBinding(kv, config.namespace, { kind: "ip", value: "10.7.1.2" })).toBeNull();
      expect(await readBinding(kv, config.namespace, { kind: "partition-ip", value: "p:10.7.1.2" })).toBeNull();
      await expectConsistent(kv, config.namespace, [x.app.devices, y.app.devices]);
    });
  });
});
