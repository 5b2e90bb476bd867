import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { forBackend } from "../support/backends.js";
import { ChildService, httpJson } from "../support/child-service.js";
import { missingAcknowledged, Publisher, report } from "../support/outage.js";
import { freePort, sleep, until } from "../support/servers.js";
import { openDeviceStore } from "../../src/app/adapters.js";
import { expectConsistent } from "../support/check.js";
import { directKv, serviceConfig, tempDir } from "../support/service.js";

/**
 * The embedded backend lives inside the service, so the drill kills the service itself: `idmap
 * serve` as a child process, SIGKILL mid-stream, started again on the same data directory
 * (IDMAP_EMBEDDED_SYNC=full, the default: the WAL is fsynced at every commit).
 */
forBackend("embedded", () => {
  describe("embedded outage: the service process killed with SIGKILL", () => {
    const data = tempDir("outage-embedded");
    let service: ChildService | undefined;
    afterAll(async () => {
      await service?.kill9();
      data.remove();
    });

    it("keeps every update acknowledged before the kill, and serves again after a restart on the same data", async () => {
      const env = {
        IDMAP_KV_BACKEND: "embedded",
        IDMAP_DATA_DIR: data.dir,
        IDMAP_EMBEDDED_SYNC: "full",
        CANONICAL_IDENTITY_MAP_ENABLED: "on",
        IDMAP_LOG_LEVEL: "warn",
        IDMAP_REQUEST_TIMEOUT: "2s",
        // The batch in flight at the kill journaled its changes and wrote no audit rows: the restarted
        // service audits them from the journal once they are this old (ADR 0017).
        IDMAP_AUDIT_RECOVERY_AGE: "1s",
      };
      service = new ChildService(await freePort(), env, join(data.dir, "serve.log"));
      await service.start();
      const svc = service;
      const run = randomUUID().slice(0, 8);
      const pub = new Publisher(
        run,
        (updates) => httpJson(`${svc.url}/v1/device-updates`, { method: "POST", body: { updates } }, 5_000),
        50,
      );
      pub.start();
      await until("six acknowledged batches", () => pub.ackedBatches >= 6, 30_000, 5);
      await sleep(3);
      const tKill = pub.now();
      await svc.kill9();
      const acked = new Map(pub.acked);
      await until("a refused request", () => pub.requests.some((r) => r.start >= tKill && r.status === 0), 10_000, 5);
      const restartMs = await svc.start();
      const tReady = pub.now();
      await until(
        "three acknowledged batches after the restart",
        () => pub.requests.filter((r) => r.start >= tReady && r.status === 200).length >= 3,
        30_000,
        10,
      );
      await pub.stop();
      const firstSuccess = pub.firstSuccessAfter(tReady)!;

      // The store itself, read by a second process-local client, then the service's lookups.
      const kv = await directKv(serviceConfig(env, data.dir));
      let missing: string[];
      try {
        missing = await missingAcknowledged(kv, "device_canonical_map", acked);
      } finally {
        await kv.close();
      }
      report("embedded (service killed)", {
        ackedBeforeKill: acked.size,
        restartMs: Math.round(restartMs),
        msToFirstPublishAfterRestart: Math.round(firstSuccess.end - tReady),
        refusedWhileDown: pub.requests.filter((r) => r.status === 0).length,
        missing: missing.length,
      });
      expect(acked.size).toBeGreaterThan(0);
      expect(missing).toEqual([]);
      for (const [armis, a] of pub.acked) {
        const l = await httpJson(`${svc.url}/v1/canonical-devices/lookup?armis_id=${encodeURIComponent(armis)}`);
        expect(l.status).toBe(200);
        expect(l.body).toMatchObject({ found: true, hydrated: false, record: { canonical_device_id: a.canonical } });
        expect(l.body.revision).toBeGreaterThan(0);
      }
      // Only connection failures while it was down: no request was answered wrongly.
      expect(pub.requests.filter((r) => r.status !== 200 && r.status !== 0)).toEqual([]);
      // The map, the device rows and the audit trail agree after the crash, read from the data
      // directory once the restarted service had time to recover the audit (issue 12).
      await sleep(2_500);
      await svc.kill9();
      const config = serviceConfig(env, data.dir);
      const [after, devices] = [await directKv(config), await openDeviceStore(config)];
      try {
        await expectConsistent(after, config.namespace, [devices], "embedded (service killed)");
      } finally {
        await after.close();
        await devices.close();
      }
    }, 90_000);
  });
});
