import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { compact } from "../../src/app/bindings/compaction.js";
import { silentLogger } from "../../src/app/logger.js";
import type { IdentityKey } from "../../src/domain/identity-key.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { runCli } from "./child-service.js";
import { getLookup, postUpdates, readBinding, serviceConfig, startService, tempDir, type Service } from "./service.js";

export interface ExpiryBackend {
  readonly name: string;
  readonly env: Record<string, string>;
  /** How `idmap compact` runs: as the CLI child process (the backend's env), or in-process (memory: the store is the process's own). */
  readonly compactWith: "cli" | "in-process";
  readonly destroy?: (kv: IdentityKv) => Promise<void>;
}

const HOUR = 3_600_000;

/**
 * Issue 3, weak-key expiry end to end: with IDMAP_WEAK_KEY_TTL=1h, addresses published with a
 * timestamp two hours old read as absent through lookups (the map's and the relational fallback's),
 * and `idmap compact` removes them from the store itself, while fresh addresses and strong keys stay.
 */
export function weakKeyExpirySuite(b: ExpiryBackend): void {
  describe(`weak-key expiry on ${b.name}`, () => {
    const data = tempDir(`expiry-${b.name}`);
    let service: Service | undefined;
    afterAll(async () => {
      if (service) {
        await b.destroy?.(service.app.kv).catch(() => {});
        await service.close();
      }
      data.remove();
    });

    it("reads old addresses as absent, and `idmap compact` removes them from the store while fresh ones stay", async () => {
      const env = {
        ...b.env,
        IDMAP_WEAK_KEY_TTL: "1h",
        IDMAP_DATA_DIR: data.dir,
        CANONICAL_IDENTITY_MAP_ENABLED: "on",
        IDMAP_LOG_LEVEL: "warn",
      };
      const s = (service = await startService(serviceConfig(env, data.dir)));
      const ns = s.config.namespace;
      const p = `exp${randomBytes(3).toString("hex")}`;
      const now = Date.now();
      const old = now - 2 * HOUR;
      const oldSweep = { ip: "10.77.0.1", partition: p, source: "sweep", timestamp: old };
      const oldLaptop = {
        device_id: `${p}-laptop`,
        ip: "10.77.0.2",
        partition: p,
        mac: "0a:77:00:00:00:02",
        source: "armis",
        metadata: { armis_device_id: `${p}-A2` },
        timestamp: old,
      };
      const freshSweep = { ip: "10.77.0.3", partition: p, source: "sweep", timestamp: now - 60_000 };
      const r = await postUpdates(s.rest, [oldSweep, oldLaptop, freshSweep]);
      expect(r.status).toBe(200);
      expect((r.body.results as { outcome: string }[]).map((x) => x.outcome)).toEqual([
        "created",
        "created",
        "created",
      ]);

      const addr = (ip: string): IdentityKey[] => [
        { kind: "partition-ip", value: `${p}:${ip}` },
        { kind: "ip", value: ip },
      ];
      const expired: IdentityKey[] = [
        ...addr("10.77.0.1"),
        ...addr("10.77.0.2"),
        { kind: "device-id", value: `${p}:10.77.0.1` },
      ];
      const kept: IdentityKey[] = [
        ...addr("10.77.0.3"),
        { kind: "device-id", value: `${p}:10.77.0.3` },
        { kind: "device-id", value: `${p}-laptop` },
        { kind: "armis-id", value: `${p}-A2` },
        { kind: "mac", value: "0A:77:00:00:00:02" },
      ];

      // Lookups: the old addresses are absent (neither the map nor the relational fallback answers);
      // the fresh address and the old device's strong keys answer.
      for (const ip of ["10.77.0.1", "10.77.0.2"]) {
        expect((await getLookup(s.rest, { ip, partition: p })).status, ip).toBe(404);
      }
      expect((await getLookup(s.rest, { ip: "10.77.0.3", partition: p })).status).toBe(200);
      expect((await getLookup(s.rest, { armis_id: `${p}-A2` })).body).toMatchObject({
        found: true,
        record: { canonical_device_id: `${p}-laptop` },
      });

      // Before compaction the expired bindings are still stored (they only read as absent).
      for (const k of expired) expect(await readBinding(s.app.kv, ns, k), `${k.kind} ${k.value} stored`).not.toBeNull();

      if (b.compactWith === "cli") {
        const out = await runCli(["compact"], env);
        expect(out.code, out.stderr).toBe(0);
        expect(out.stdout).toMatch(/expired, [1-9]\d* removed/);
      } else {
        const summary = await compact(s.app.store, s.app.devices, Date.now(), s.app.metrics, silentLogger);
        expect(summary.removed).toBeGreaterThanOrEqual(expired.length);
      }

      for (const k of expired) expect(await readBinding(s.app.kv, ns, k), `${k.kind} ${k.value} removed`).toBeNull();
      for (const k of kept) expect(await readBinding(s.app.kv, ns, k), `${k.kind} ${k.value} kept`).not.toBeNull();
      // Still absent after compaction: nothing brings them back (the fallback does not hydrate them).
      for (const ip of ["10.77.0.1", "10.77.0.2"]) {
        expect((await getLookup(s.rest, { ip, partition: p })).status, ip).toBe(404);
      }
      for (const k of expired)
        expect(await readBinding(s.app.kv, ns, k), `${k.kind} ${k.value} not hydrated`).toBeNull();
    }, 60_000);
  });
}
