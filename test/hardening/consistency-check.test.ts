import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { encodeRecord } from "../../src/adapters/proto/record-codec.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import { compact } from "../../src/app/bindings/compaction.js";
import { checkConsistency } from "../../src/app/check/consistency-check.js";
import { loadConfig } from "../../src/app/config.js";
import { createApp, type App } from "../../src/app/container.js";
import { silentLogger } from "../../src/app/logger.js";
import { keyPath } from "../../src/domain/key-path.js";
import { testApp } from "../support/app.js";
import { readBinding, tempDir } from "../support/service.js";

const run = promisify(execFile);

describe("the consistency checker", () => {
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it("finds nothing after ordinary publishes, and each kind of disagreement when one is planted", async () => {
    const t = await testApp();
    app = t.app;
    const rest = await buildRestApp(app);
    const publish = (updates: object[]) =>
      rest.inject({ method: "POST", url: "/v1/device-updates", payload: { updates } });
    await publish([
      { device_id: "d-1", ip: "10.8.0.1", mac: "02:00:00:00:08:01", metadata: { armis_device_id: "A-81" } },
      { device_id: "d-2", ip: "10.8.0.2", mac: "02:00:00:00:08:02" },
      // Merged into d-1 by the shared Armis id.
      { device_id: "d-3", mac: "02:00:00:00:08:03", metadata: { armis_device_id: "A-81" } },
    ]);
    const check = () =>
      checkConsistency({
        kv: app!.kv,
        namespace: app!.config.namespace,
        devices: [app!.devices],
        nowMs: t.clock.nowMs(),
      });
    expect(await check()).toEqual([]);

    const ns = app.config.namespace;
    const d1 = (await readBinding(app.kv, ns, { kind: "device-id", value: "d-1" }))!.record;
    // A key bound behind the service's back: in no index, in no audit row.
    await app.kv.create(keyPath(ns, { kind: "mac", value: "02:00:00:00:08:99" }), encodeRecord(d1));
    // A key bound to an id that was merged away.
    const d3 = (await readBinding(app.kv, ns, { kind: "device-id", value: "d-3" }))!;
    expect(d3.record.canonicalDeviceId).toBe("d-1");
    await app.kv.create(
      keyPath(ns, { kind: "mac", value: "02:00:00:00:08:98" }),
      encodeRecord({ ...d1, canonicalDeviceId: "d-3" }),
    );
    // A device row with an address the map never gave the device.
    const row = (await app.devices.getDevice("d-2"))!;
    await app.devices.upsertDevices([{ ...row, ip: "10.8.0.77" }]);

    const findings = await check();
    expect(findings).toEqual(
      expect.arrayContaining([
        { kind: "unaudited_binding", key: { kind: "mac", value: "02:00:00:00:08:99" }, deviceId: "d-1" },
        { kind: "key_not_listed", key: { kind: "mac", value: "02:00:00:00:08:99" }, deviceId: "d-1" },
        {
          kind: "bound_to_retired",
          key: { kind: "mac", value: "02:00:00:00:08:98" },
          deviceId: "d-3",
          redirectsTo: "d-1",
        },
        expect.objectContaining({ kind: "row_disagrees", deviceId: "d-2", field: "ip", row: "10.8.0.77" }),
      ]),
    );
    await rest.close();
  });

  it("reads the trail of a device that holds nothing any more: its row's address was bound once", async () => {
    const t = await testApp();
    app = t.app;
    // A sweep-only device: every binding of it expires (device-id included), its row stays.
    await app.publish.publish([{ ip: "10.8.1.9", partition: "p", source: "sweep" }], "w");
    t.clock.advance(3 * 24 * 3_600_000);
    await compact(app.store, app.devices, t.clock.nowMs(), app.metrics, app.log);
    const check = () =>
      checkConsistency({
        kv: app!.kv,
        namespace: app!.config.namespace,
        devices: [app!.devices],
        nowMs: t.clock.nowMs(),
      });
    expect((await app.devices.getDevice("p:10.8.1.9"))?.ip).toBe("10.8.1.9");
    expect(await check()).toEqual([]);
    // The same row with an address the map never gave that device is still found.
    const row = (await app.devices.getDevice("p:10.8.1.9"))!;
    await app.devices.upsertDevices([{ ...row, ip: "10.8.1.77" }]);
    expect(await check()).toEqual([
      {
        kind: "row_disagrees",
        deviceId: "p:10.8.1.9",
        field: "ip",
        row: "10.8.1.77",
        map: "(never bound to the device)",
      },
    ]);
  });

  it("`idmap check` exits 0 on a consistent store and 1, one line per finding, otherwise", async () => {
    const dir = tempDir("check");
    try {
      const env = {
        IDMAP_DATA_DIR: dir.dir,
        IDMAP_KV_BACKEND: "embedded",
        CANONICAL_IDENTITY_MAP_ENABLED: "on",
        IDMAP_LOG_LEVEL: "warn",
      };
      const cli = () =>
        run("npx", ["tsx", "src/app/cli.ts", "check", "--json"], { env: { ...process.env, ...env } }).then(
          (r) => ({ code: 0, lines: r.stdout.split("\n").filter(Boolean) }),
          (e: { code: number; stdout: string }) => ({ code: e.code, lines: e.stdout.split("\n").filter(Boolean) }),
        );
      const local = await createApp(loadConfig(env), { logger: silentLogger });
      await local.publish.publish([{ device_id: "c-1", ip: "10.8.1.1", mac: "02:00:00:00:81:01" }], "test");
      const row = (await local.devices.getDevice("c-1"))!;
      await local.close();
      expect(await cli()).toEqual({ code: 0, lines: [] });

      const again = await createApp(loadConfig(env), { logger: silentLogger });
      await again.devices.upsertDevices([{ ...row, ip: "10.8.1.99" }]);
      await again.close();
      const planted = await cli();
      expect(planted.code).toBe(1);
      expect(planted.lines.map((l) => JSON.parse(l))).toEqual([
        { kind: "row_disagrees", deviceId: "c-1", field: "ip", row: "10.8.1.99", map: "(never bound to the device)" },
      ]);
    } finally {
      dir.remove();
    }
  }, 60_000);
});
