import { afterEach, describe, expect, it } from "vitest";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import { loadConfig } from "../../src/app/config.js";
import { createApp, type App } from "../../src/app/container.js";
import { PublishService } from "../../src/app/publish/publish-service.js";
import { ManualClock } from "../support/app.js";
import { capturedLogger } from "./capture.js";
import { parseExposition, sampleValue, seriesOf } from "./exposition.js";
import { FaultyKv } from "./faults.js";

let app: App | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function faultyApp() {
  const config = loadConfig({
    IDMAP_DATA_DIR: ":memory:",
    IDMAP_LOG_LEVEL: "info",
    CANONICAL_IDENTITY_MAP_ENABLED: "on",
  });
  const kv = new FaultyKv();
  const logs = capturedLogger(config);
  app = await createApp(config, { clock: new ManualClock(), logger: logs.logger, kv });
  const scrape = async () => parseExposition(await app!.metrics.registry.metrics());
  return { app, kv, logs, scrape };
}

const device = (n: number) => ({
  device_id: `dev-${n}`,
  mac: `02:00:00:00:01:${String(n).padStart(2, "0")}`,
  metadata: { armis_device_id: `A-${n}` },
});

describe("KV outcomes in the metrics", () => {
  it("a CAS conflict is result=conflict (not ok, not error), retried, and counted once as revision_mismatch", async () => {
    const { app, kv, scrape } = await faultyApp();
    kv.faults.push("conflict");
    const [r] = await app.publish.publish([device(1)], "test");
    expect(r!.outcome).toBe("created");
    const s = await scrape();
    expect(sampleValue(s, "identitymap_conflict_total", { reason: "revision_mismatch" })).toBe(1);
    expect(
      sampleValue(s, "identitymap_kv_operations_total", { op: "create", backend: "memory", result: "conflict" }),
    ).toBe(1);
    expect(s.some((x) => x.name === "identitymap_kv_operations_total" && x.labels.result === "error")).toBe(false);
    // After the conflict the update re-read its bindings from the KV: that is a get_many, not a cache answer.
    expect(sampleValue(s, "identitymap_kv_operations_total", { op: "get_many", backend: "memory", result: "ok" })).toBe(
      1,
    );
  });

  it("a lost reply is result=unknown and settles as our own write, never a conflict", async () => {
    const { app, kv, scrape } = await faultyApp();
    kv.faults.push("lost_reply");
    const [r] = await app.publish.publish([device(2)], "test");
    expect(r!.outcome).toBe("created");
    const s = await scrape();
    expect(
      sampleValue(s, "identitymap_kv_operations_total", { op: "create", backend: "memory", result: "unknown" }),
    ).toBe(1);
    expect(sampleValue(s, "identitymap_kv_operations_total", { op: "get", backend: "memory", result: "ok" })).toBe(1);
    expect(sampleValue(s, "identitymap_conflict_total", { reason: "revision_mismatch" })).toBe(0);
  });

  it("an update that needed several attempts is logged as conflicts over budget, with its key", async () => {
    const { app, kv, logs, scrape } = await faultyApp();
    kv.faults.push("conflict", "conflict", "conflict");
    const [r] = await app.publish.publish([device(3)], "test");
    expect(r!.outcome).toBe("created");
    expect(sampleValue(await scrape(), "identitymap_conflict_total", { reason: "revision_mismatch" })).toBe(3);
    const warn = logs.lines().find((l) => l.msg === "CAS conflicts over budget");
    expect(warn).toMatchObject({ level: 40, updates: 1, conflicts: 3, keys: ["device_canonical_map/device-id/dev-3"] });
    const batch = logs.lines().find((l) => l.msg === "publish batch");
    expect(batch).toMatchObject({ level: 30, actor: "test", batch: 1, created: 1, failed: 0, cas_conflicts: 3 });
  });

  it("retry exhaustion fails the update, counts retry_exhausted and a failed outcome, and warns with the key", async () => {
    const { app, kv, logs, scrape } = await faultyApp();
    const impatient = new PublishService({
      store: app.store,
      devices: app.devices,
      clock: app.clock,
      metrics: app.metrics,
      log: logs.logger,
      policy: app.policy,
      // A budget many attempts long: under a loaded machine a first attempt alone took 25 ms.
      backoff: { initialMs: 1, maxMs: 2, multiplier: 1, jitter: 0, budgetMs: 250 },
    });
    kv.alwaysConflict = true;
    const [r] = await impatient.publish([device(4)], "test");
    expect(r!.outcome).toBe("failed");
    expect(r!.error?.code).toBe("retry_exhausted");
    const s = await scrape();
    expect(sampleValue(s, "identitymap_conflict_total", { reason: "retry_exhausted" })).toBe(1);
    expect(sampleValue(s, "identitymap_kv_publish_total", { outcome: "failed" })).toBe(1);
    const attempts = sampleValue(s, "identitymap_conflict_total", { reason: "revision_mismatch" })!;
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(
      sampleValue(s, "identitymap_kv_operations_total", { op: "create", backend: "memory", result: "conflict" }),
    ).toBe(attempts);
    const warn = logs.lines().find((l) => l.msg === "CAS retries exhausted");
    expect(warn).toMatchObject({
      level: 40,
      key: "device_canonical_map/device-id/dev-4",
      attempts,
      device_id: "dev-4",
    });
    expect(logs.lines().some((l) => l.msg === "CAS conflicts over budget")).toBe(false);
  });

  it("with the KV down a publish batch is 503, every update in it counts as failed, and KV calls count as errors", async () => {
    const { app, kv, logs, scrape } = await faultyApp();
    const rest = await buildRestApp(app);
    try {
      kv.down = true;
      const r = await rest.inject({
        method: "POST",
        url: "/v1/device-updates",
        payload: { updates: [device(5), device(6)] },
      });
      expect(r.statusCode).toBe(503);
      const look = await rest.inject({ method: "GET", url: "/v1/canonical-devices/lookup?mac=02:00:00:00:09:99" });
      // The relational store does not know it, but the map could not be asked: "no such device"
      // would be a guess (issue 12), so the miss is an outage, not a 404.
      expect(look.statusCode).toBe(503);
      expect((await rest.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(503);
      const s = await scrape();
      expect(seriesOf(s, "identitymap_kv_publish_total")).toMatchObject({ "outcome=failed": 2, "outcome=created": 0 });
      expect(sampleValue(s, "identitymap_publish_batch_size_count")).toBe(1);
      expect(
        sampleValue(s, "identitymap_kv_operations_total", { op: "create", backend: "memory", result: "error" }),
      ).toBeGreaterThanOrEqual(1);
      // The lookup asked the store once (one batch read for its keys), and that read failed.
      expect(
        sampleValue(s, "identitymap_kv_operations_total", { op: "get_many", backend: "memory", result: "error" }),
      ).toBe(1);
      expect(seriesOf(s, "identitymap_lookup_total")).toMatchObject({ "result=miss": 0, "result=error": 1 });
      expect(logs.lines().find((l) => l.msg === "publish batch failed")).toMatchObject({
        level: 50,
        batch: 2,
        code: "kv_unavailable",
      });
    } finally {
      await rest.close();
    }
  });
});

describe("compaction metrics", () => {
  it("counts expired and compacted bindings by kind, with an audit log line each", async () => {
    const { app, logs, scrape } = await faultyApp();
    const { compact } = await import("../../src/app/bindings/compaction.js");
    await app.publish.publish([{ ip: "10.9.0.1", partition: "p", source: "sweep" }], "test");
    (app.clock as ManualClock).advance(25 * 3_600_000);
    const before = await scrape();
    expect(sampleValue(before, "identitymap_bindings", { kind: "ip", state: "expired" })).toBe(1);
    const summary = await compact(app.store, app.devices, app.clock.nowMs(), app.metrics, app.log);
    expect(summary).toMatchObject({ expired: 3, removed: 3, raced: 0 });
    const s = await scrape();
    for (const kind of ["ip", "partition-ip", "device-id"]) {
      expect(sampleValue(s, "identitymap_bindings_expired_total", { kind })).toBe(1);
      expect(sampleValue(s, "identitymap_bindings_compacted_total", { kind })).toBe(1);
      expect(sampleValue(s, "identitymap_binding_changes_total", { reason: "expired", kind })).toBe(1);
    }
    expect(logs.lines().filter((l) => l.msg === "binding change" && l.reason === "expired")).toHaveLength(3);
    expect(sampleValue(s, "identitymap_bindings", { kind: "ip", state: "expired" })).toBe(0);
  });
});
