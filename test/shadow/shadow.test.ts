import { describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { runBackfill } from "../../src/app/backfill/backfill.js";
import type { App } from "../../src/app/container.js";
import type { Logger } from "../../src/app/logger.js";
import { loadConfig } from "../../src/app/config.js";
import { createApp } from "../../src/app/container.js";
import type { DeviceUpdate } from "../../src/domain/device-update.js";
import { countingKv, ManualClock, testApp } from "../support/app.js";

const armis = (id: string) => ({ armis_device_id: id });

/** A logger that keeps what it was told. */
function capture(): Logger & { lines: { msg: string; obj: Record<string, unknown> }[] } {
  const lines: { msg: string; obj: Record<string, unknown> }[] = [];
  const keep = (obj: object, msg: string) => void lines.push({ msg, obj: obj as Record<string, unknown> });
  return { lines, info: keep, warn: keep, error: keep, debug() {} };
}

async function shadowApp(kv: MemoryKv, log: Logger = capture()): Promise<App> {
  const config = loadConfig({
    IDMAP_DATA_DIR: ":memory:",
    IDMAP_LOG_LEVEL: "silent",
    CANONICAL_IDENTITY_MAP_ENABLED: "shadow",
  });
  return createApp(config, { clock: new ManualClock(), logger: log, kv });
}

async function divergences(app: App): Promise<Record<string, number>> {
  const m = await app.metrics.registry.getSingleMetric("identitymap_shadow_divergence_total")?.get();
  return Object.fromEntries((m?.values ?? []).map((v) => [String(v.labels.reason), v.value]));
}

const laptop = (ip: string): DeviceUpdate => ({
  device_id: `p:${ip}`,
  ip,
  partition: "p",
  mac: "02:00:00:00:00:01",
  source: "armis",
  metadata: armis("A-1"),
});

describe("shadow mode", () => {
  it("decides on the KV map next to the relational one and writes nothing to the KV", async () => {
    const kv = countingKv(new MemoryKv());
    const app = await shadowApp(kv as unknown as MemoryKv);
    try {
      kv.reset();
      const results = await app.publish.publish(
        [laptop("10.0.0.5"), { ip: "10.0.0.8", partition: "p", source: "sweep" }],
        "test",
      );
      expect(results.map((r) => r.outcome)).toEqual(["created", "created"]);
      await app.publish.publish([laptop("10.0.0.9")], "test");
      expect((kv.calls.create ?? 0) + (kv.calls.update ?? 0) + (kv.calls.delete ?? 0)).toBe(0);
      expect((await kv.list("")).entries).toEqual([]);
      // The relational map has the device; the KV map never heard of it: the second sighting diverges.
      expect(await divergences(app)).toEqual({ missing_in_kv: 1 });
    } finally {
      await app.close();
    }
  });

  it("counts and logs a decision that differs on purpose, and none once the map agrees", async () => {
    const kv = new MemoryKv();
    // The KV map says Armis id A-7 is device kv-7 (an earlier run with the flag on).
    const { app: on } = await testApp({ CANONICAL_IDENTITY_MAP_ENABLED: "on" }, kv);
    await on.publish.publish([{ device_id: "kv-7", metadata: armis("A-7"), source: "armis" }], "test");
    await on.close();
    const entries = (await kv.list("")).entries.map((e) => [e.key, e.revision]);

    const log = capture();
    const app = await shadowApp(kv, log);
    try {
      // The relational map learns A-7 as db-7: the KV map would have said kv-7.
      await app.publish.publish([{ device_id: "db-7", metadata: armis("A-7"), source: "armis" }], "test");
      expect(await divergences(app)).toEqual({ missing_in_primary: 1 });
      const r = await app.publish.publish(
        [{ device_id: "db-7", metadata: armis("A-7"), hostname: "h", source: "armis" }],
        "test",
      );
      expect(r[0]!.canonical_device_id).toBe("db-7");
      expect(await divergences(app)).toEqual({ missing_in_primary: 1, canonical_id: 1 });
      const line = log.lines.find((l) => l.msg === "shadow decision differs" && l.obj.reason === "canonical_id");
      expect(line?.obj).toMatchObject({
        device_id: "db-7",
        primary: { canonical_device_id: "db-7" },
        kv: { canonical_device_id: "kv-7", matched_by: "armis-id" },
      });
      expect((await kv.list("")).entries.map((e) => [e.key, e.revision])).toEqual(entries);

      // A device both maps know the same way diverges nowhere: seed the KV from history, then publish.
      await app.publish.publish([laptop("10.0.0.5")], "test");
      await runBackfill(app, { seedKvOnly: true });
      const before = await divergences(app);
      await app.publish.publish([laptop("10.0.0.5"), laptop("10.0.0.9")], "test");
      expect(await divergences(app)).toEqual(before);
    } finally {
      await app.close();
    }
  });

  it("a KV that cannot answer is counted as an error, and never fails the publish", async () => {
    const down = new Proxy(new MemoryKv(), {
      get(target, prop) {
        if (["get", "getMany", "list", "watch"].includes(String(prop)))
          return async () => Promise.reject(new Error("KV unreachable"));
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const app = await shadowApp(down);
    try {
      const r = await app.publish.publish([laptop("10.0.0.5")], "test");
      expect(r[0]!.outcome).toBe("created");
      expect(await divergences(app)).toEqual({ error: 1 });
    } finally {
      await app.close();
    }
  });
});
