import { afterEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import type { App } from "../../src/app/container.js";
import { KvUnavailable } from "../../src/domain/errors.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { testApp } from "../support/app.js";
import { expectConsistent } from "../support/check.js";

/** A memory KV whose deletes of matching keys fail as if the store had gone away. */
function failingDeletes(inner: IdentityKv, matches: (key: string) => boolean): IdentityKv {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (prop === "delete")
        return (key: string, ...rest: unknown[]) =>
          matches(key)
            ? Promise.reject(new KvUnavailable("memory: the store went away"))
            : (v as (...a: unknown[]) => unknown).call(target, key, ...rest);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

// Found by the Redis outage drill and the etcd clusters under elections (issues 12 and 17): the device
// record commits a move, then the KV goes away before the old address is deleted. The old address
// stayed bound to the device, and the committed index no longer listed it.
describe("a move whose old-address delete never lands", () => {
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it("leaves the old address bound and still listed: the checker finds nothing", async () => {
    const kv = failingDeletes(new MemoryKv(), (k) => k.includes("10.4.0.1"));
    const t = await testApp({}, kv);
    app = t.app;
    const laptop = (ip: string) => ({
      device_id: "lap-1",
      ip,
      partition: "p",
      mac: "02:00:00:00:04:01",
      metadata: { armis_device_id: "A-41" },
      source: "armis",
    });
    await app.publish.publish([laptop("10.4.0.1")], "w");
    t.clock.advance(60_000);
    await expect(app.publish.publish([laptop("10.4.0.2")], "w")).rejects.toBeInstanceOf(KvUnavailable);
    const old = await app.store.get({ kind: "partition-ip", value: "p:10.4.0.1" });
    expect(old?.record.canonicalDeviceId).toBe("lap-1");
    await expectConsistent(kv, app.config.namespace, [app.devices], "", { nowMs: () => t.clock.nowMs() });
  });
});
