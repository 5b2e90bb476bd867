import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IdentityKey } from "../../src/domain/identity-key.js";
import { keyPath } from "../../src/domain/key-path.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import type { PrivateServer } from "./servers.js";
import { sleep, until } from "./servers.js";
import {
  counterValue,
  directKv,
  postUpdates,
  readBinding,
  serviceConfig,
  startService,
  tempDir,
  type Service,
} from "./service.js";
import { TcpProxy } from "./tcp-proxy.js";
import type { WriteLog } from "./write-log.js";

/** What differs between backends, declared once per backend (never `if (backend === ...)` in a test). */
export interface AmbiguityBackend {
  /** The backend, as titles and temporary directories name it. */
  readonly name: string;
  startServer(): Promise<PrivateServer>;
  /** The backend's settings for a service reaching the server at 127.0.0.1:`port`, on store `bucket`. */
  env(port: number, bucket: string): Record<string, string>;
  /** The server's own record of writes per key (see write-log.ts). */
  writeLog(server: PrivateServer, bucket: string): Promise<WriteLog>;
}

interface Drill {
  service: Service;
  direct: IdentityKv;
  log: WriteLog;
}

/** A device that only this test reports; its hostname is in every record written for it (the proxy's marker). */
function device(tag: string) {
  const n = Number.parseInt(tag.slice(0, 6), 16);
  const hex = (x: number) => (x & 255).toString(16).padStart(2, "0");
  return {
    device_id: `amb-${tag}`,
    mac: `06:00:00:${hex(n >> 16)}:${hex(n >> 8)}:${hex(n)}`,
    hostname: `marker-${tag}`,
    source: "armis",
    metadata: { armis_device_id: `amb-${tag}` },
  };
}

function keysOf(d: ReturnType<typeof device>): IdentityKey[] {
  return [
    { kind: "device-id", value: d.device_id },
    { kind: "armis-id", value: d.metadata.armis_device_id },
    { kind: "mac", value: d.mac.toUpperCase() },
  ];
}

/**
 * Issue 3, ambiguous writes, against a private server: (1) a write whose reply is lost (a proxy
 * forwards the request, holds back the reply and drops the connection once the write is visible)
 * is settled by re-reading: our own write, never a conflict with ourselves; (2) pausing the
 * server longer than the client timeout applies nothing twice.
 */
export function ambiguityDrills(b: AmbiguityBackend): void {
  describe(`ambiguous writes on ${b.name}`, () => {
    let server: PrivateServer;
    let proxy: TcpProxy;
    const data = tempDir(`ambiguity-${b.name}`);
    const drills: Drill[] = [];

    beforeAll(async () => {
      server = await b.startServer();
      proxy = await TcpProxy.start(server.port);
    });
    afterAll(async () => {
      for (const d of drills) {
        await d.service.close().catch(() => {});
        await d.direct.close().catch(() => {});
        await d.log.close().catch(() => {});
      }
      await proxy?.close();
      await server?.stop();
      data.remove();
    });

    async function drill(timeout: string, viaProxy: boolean): Promise<Drill> {
      const bucket = `amb_${randomUUID().slice(0, 8)}`;
      const env = { ...b.env(viaProxy ? proxy.port : server.port, bucket), IDMAP_REQUEST_TIMEOUT: timeout };
      const config = serviceConfig(env, ":memory:");
      const service = await startService(config);
      const direct = await directKv(serviceConfig(b.env(server.port, bucket), ":memory:"));
      const log = await b.writeLog(server, bucket);
      const d = { service, direct, log };
      drills.push(d);
      // Connections up, cache synced: the drill starts from a service in its steady state.
      const warm = await postUpdates(service.rest, [device(randomUUID().replace(/-/g, ""))]);
      expect(warm.status).toBe(200);
      return d;
    }

    it("settles a write whose reply was lost by re-reading: success, no conflict, one write per key", async () => {
      const { service, direct, log } = await drill("3s", true);
      const ns = service.config.namespace;
      const u = device(randomUUID().replace(/-/g, ""));
      const conflictsBefore = await counterValue(service.app, "identitymap_conflict_total", {
        reason: "revision_mismatch",
      });
      const unknownBefore = await counterValue(service.app, "identitymap_kv_operations_total", { result: "unknown" });

      const trapped = proxy.loseReplyAfter(u.hostname);
      const pending = postUpdates(service.rest, [u]);
      await trapped;
      // The first write (the device record) reached the server; once it is visible there, cut the
      // connection that holds its reply back.
      await until(
        "the trapped write to be applied",
        async () => (await readBinding(direct, ns, keysOf(u)[0]!)) !== null,
        5_000,
        10,
      );
      expect(proxy.cut()).toBeGreaterThan(0);
      const res = await pending;

      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.results[0]).toMatchObject({ outcome: "created", canonical_device_id: u.device_id });
      expect(await counterValue(service.app, "identitymap_kv_operations_total", { result: "unknown" })).toBeGreaterThan(
        unknownBefore,
      );
      expect(await counterValue(service.app, "identitymap_conflict_total", { reason: "revision_mismatch" })).toBe(
        conflictsBefore,
      );
      for (const k of keysOf(u)) {
        const got = await readBinding(direct, ns, k);
        expect(got?.record.canonicalDeviceId, `${k.kind}`).toBe(u.device_id);
        expect(await log.writes(keyPath(ns, k)), `${k.kind} written once`).toBe(1);
      }
      // The registry retries what it did not see acknowledged: nothing is written again.
      const again = await postUpdates(service.rest, [u]);
      expect(again.body.results[0].outcome).toBe("unchanged");
      for (const k of keysOf(u)) expect(await log.writes(keyPath(ns, k))).toBe(1);
    }, 30_000);

    it("applies nothing twice when the server is paused longer than the client timeout", async () => {
      const { service, direct, log } = await drill("1s", false);
      const ns = service.config.namespace;
      const u = device(randomUUID().replace(/-/g, ""));
      const conflictsBefore = await counterValue(service.app, "identitymap_conflict_total", {
        reason: "revision_mismatch",
      });

      server.pause();
      let first: { outcome: string }[] | Error;
      try {
        // In-process, without the REST deadline: what the publish itself makes of the timeouts.
        const publishing = service.app.publish.publish([u], "test").catch((e: Error) => e);
        await sleep(2_500);
        server.resume();
        first = await publishing;
      } finally {
        server.resume();
      }
      // Whatever the first attempt concluded, the registry's retry must see the device exactly once.
      const retry = await service.app.publish.publish([u], "test");
      expect(["created", "updated", "unchanged"]).toContain(retry[0]!.outcome);
      expect(retry[0]!.canonical_device_id).toBe(u.device_id);
      // Created by this call; `updated` when the settling re-read ran before the server applied the
      // write it had received (etcd can), so the next attempt found the device record already there.
      if (!(first instanceof Error)) expect(["created", "updated"]).toContain(first[0]!.outcome);
      // A decision that binds keys writes the device record too (ADR 0008: it must meet a concurrent
      // drop on the record's revision), so an attempt that found the first one's record there rewrites
      // it once: a write of its own, not the first applied twice. Every other key is written once.
      const rebound = [first instanceof Error ? "" : first[0]!.outcome, retry[0]!.outcome].filter(
        (o) => o === "updated",
      ).length;
      for (const k of keysOf(u)) {
        expect((await readBinding(direct, ns, k))?.record.canonicalDeviceId).toBe(u.device_id);
        const times = k.kind === "device-id" ? 1 + rebound : 1;
        expect(await log.writes(keyPath(ns, k)), `${k.kind} written ${times} time(s)`).toBe(times);
      }
      expect(await counterValue(service.app, "identitymap_conflict_total", { reason: "revision_mismatch" })).toBe(
        conflictsBefore,
      );
      console.log(
        `[failure-figures] ${b.name} paused 2.5 s with a 1 s client timeout: first attempt ${first instanceof Error ? `${first.name}` : first[0]!.outcome}, retry ${retry[0]!.outcome}`,
      );
    }, 30_000);
  });
}
