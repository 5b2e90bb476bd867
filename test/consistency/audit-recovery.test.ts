import { afterEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { openDeviceStore } from "../../src/app/adapters.js";
import { loadConfig } from "../../src/app/config.js";
import { type App, createApp } from "../../src/app/container.js";
import { silentLogger } from "../../src/app/logger.js";
import { recoverAudit } from "../../src/app/publish/audit-recovery.js";
import { DbUnavailable } from "../../src/domain/errors.js";
import type { DeviceStore } from "../../src/ports/index.js";
import { ManualClock } from "../support/app.js";
import { expectConsistent } from "../support/check.js";

/** The real SQLite device store, whose audit writes fail while `down` is set (the database went away). */
function failingAudit(inner: DeviceStore): DeviceStore & { down: boolean } {
  const state = { down: false };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === "down") return state.down;
      const v = Reflect.get(target, prop, receiver);
      if (prop === "appendAudit")
        return (...args: unknown[]) =>
          state.down
            ? Promise.reject(new DbUnavailable("sqlite: the database went away"))
            : (v as (...a: unknown[]) => Promise<void>).apply(target, args);
      return typeof v === "function" ? v.bind(target) : v;
    },
    set(_target, prop, value) {
      if (prop !== "down") return false;
      state.down = value;
      return true;
    },
  }) as DeviceStore & { down: boolean };
}

describe("audit of binding changes whose audit rows were never written (ADR 0017)", () => {
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it("the database fails between the KV writes and the audit: recovery audits from the journal what the map holds", async () => {
    const config = loadConfig({
      IDMAP_DATA_DIR: ":memory:",
      IDMAP_LOG_LEVEL: "silent",
      CANONICAL_IDENTITY_MAP_ENABLED: "on",
    });
    const clock = new ManualClock();
    const devices = failingAudit(await openDeviceStore(config));
    app = await createApp(config, { clock, logger: silentLogger, kv: new MemoryKv(), devices });
    const ns = config.namespace;
    await app.publish.publish(
      [{ device_id: "d-1", mac: "02:00:00:00:09:01", ip: "10.9.0.1", partition: "p", source: "agent" }],
      "w",
    );
    await expectConsistent(app.kv, ns, [devices], "", { nowMs: () => clock.nowMs() });

    clock.advance(60_000);
    devices.down = true;
    const batch = [
      { device_id: "d-2", mac: "02:00:00:00:09:02", metadata: { armis_device_id: "A-92" } },
      { device_id: "d-1", mac: "02:00:00:00:09:01", ip: "10.9.0.7", partition: "p", source: "agent" }, // a DHCP move
    ];
    await expect(app.publish.publish(batch, "w")).rejects.toBeInstanceOf(DbUnavailable);
    devices.down = false;
    // The KV took the batch; the trail did not: the checker sees it.
    const checks = await import("../../src/app/check/consistency-check.js");
    const before = await checks.checkConsistency({
      kv: app.kv,
      namespace: ns,
      devices: [devices],
      nowMs: clock.nowMs(),
    });
    expect(before.filter((f) => f.kind === "unaudited_binding").length).toBeGreaterThanOrEqual(5);

    // Too young: a publish that may still be running is left alone.
    const early = await recoverAudit({
      store: app.store,
      devices,
      log: silentLogger,
      nowMs: clock.nowMs(),
      minAgeMs: 1_000,
    });
    expect(early).toEqual({ intents: 0, audited: 0 });
    clock.advance(2_000);
    const r = await recoverAudit({
      store: app.store,
      devices,
      log: silentLogger,
      nowMs: clock.nowMs(),
      minAgeMs: 1_000,
    });
    // One journal row: the two updates decided in the same tick of one batch (issue 13).
    // Both updates' changes are in it, so recovery audits what it did with one row per update: 7 rows.
    expect(r).toEqual({ intents: 1, audited: 7 });
    await expectConsistent(app.kv, ns, [devices], "", { nowMs: () => clock.nowMs() });
    const trail = await devices.history("d-1", { limit: 50 });
    expect(
      trail.entries
        .slice(0, 4)
        .map((e) => `${e.reason} ${e.key.kind} ${e.key.value}`)
        .sort(),
    ).toEqual([
      "linked ip 10.9.0.7",
      "linked partition-ip p:10.9.0.7",
      "moved ip 10.9.0.1",
      "moved partition-ip p:10.9.0.1",
    ]);
    // Settled: running it again audits nothing twice.
    expect(
      await recoverAudit({ store: app.store, devices, log: silentLogger, nowMs: clock.nowMs(), minAgeMs: 0 }),
    ).toEqual({
      intents: 0,
      audited: 0,
    });
  });

  it("an ordinary publish settles its journal with its audit rows, and an unchanged one journals nothing", async () => {
    const config = loadConfig({
      IDMAP_DATA_DIR: ":memory:",
      IDMAP_LOG_LEVEL: "silent",
      CANONICAL_IDENTITY_MAP_ENABLED: "on",
    });
    const clock = new ManualClock();
    const devices = await openDeviceStore(config);
    app = await createApp(config, { clock, logger: silentLogger, kv: new MemoryKv(), devices });
    await app.publish.publish([{ device_id: "d-3", mac: "02:00:00:00:09:03" }], "w");
    await app.publish.publish([{ device_id: "d-3", mac: "02:00:00:00:09:03" }], "w");
    expect(await devices.unsettledIntents(clock.nowMs() + 1, 10)).toEqual([]);
  });
});
