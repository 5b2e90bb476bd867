import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forBackend } from "../support/backends.js";
import { missingAcknowledged, report, batch } from "../support/outage.js";
import { serverOutage, type OutageResult } from "../support/outage-scenario.js";
import { redisServer, type PrivateServer } from "../support/servers.js";
import { postUpdates } from "../support/service.js";
import { expectConsistent } from "../support/check.js";

/**
 * The negative control: Redis as this machine runs it by default (`--save "" --appendonly no`)
 * keeps nothing across a restart. The same check that finds nothing missing with the durable
 * settings must find the loss here; a check that cannot fail proves nothing.
 */
forBackend("redis", () => {
  describe("redis outage without persistence (negative control)", () => {
    let server: PrivateServer & { url: string };
    let result: OutageResult | undefined;
    beforeAll(async () => {
      server = await redisServer(false);
    });
    afterAll(async () => {
      await result?.cleanup();
      await server?.stop();
    });

    it("detects the acknowledged updates Redis lost, and republishing them restores the map", async () => {
      const r = (result = await serverOutage({ backend: "redis", server, address: server.url, outageMs: 1_500 }));
      report("redis without persistence", {
        ackedBeforeKill: r.ackedBeforeKill,
        missing: r.missing.length,
        msToRecover: Math.round(r.msToRecover),
      });
      expect(r.ackedBeforeKill).toBeGreaterThan(0);
      expect(r.missing.length).toBeGreaterThan(0);

      // The service noticed the store went back in time (its cache re-listed instead of trusting
      // stale entries): republishing the lost updates writes them again instead of answering
      // `unchanged` from a cache that still believes in them.
      // Devices the publisher reported again after the restart were re-created then; the others
      // are only in the relational store and in a cache that must not vouch for them any more.
      const touched = new Set(
        r.publisher.requests
          .filter((q) => q.status === 200 && q.start >= r.tReady)
          .flatMap((q) => batch(r.run, q.batch).map((u) => u.metadata.armis_device_id)),
      );
      // Every acknowledged update is gone, except those the publisher happened to send again once
      // Redis was back (under load the stream can resend some): the check sees the whole loss.
      const ackedIds = [...r.acked.keys()];
      expect(ackedIds.filter((a) => !touched.has(a)).every((a) => r.missing.includes(a))).toBe(true);
      const untouched = r.missing.filter((a) => !touched.has(a));
      expect(untouched.length).toBeGreaterThan(0);
      const firstSightings = new Map(
        Array.from({ length: r.publisher.ackedBatches + 8 }, (_, b) => batch(r.run, b))
          .flat()
          .reverse()
          .map((u) => [u.metadata.armis_device_id, u]),
      );
      const res = await postUpdates(
        r.service.rest,
        untouched.map((a) => firstSightings.get(a)!),
      );
      expect(res.status).toBe(200);
      expect(new Set((res.body.results as { outcome: string }[]).map((x) => x.outcome))).toEqual(new Set(["created"]));
      const again = new Map(untouched.map((a) => [a, r.acked.get(a)!]));
      expect(await missingAcknowledged(r.direct, r.service.config.namespace, again)).toEqual([]);
      // What the map holds now agrees with the rows and the audit trail (what Redis forgot is gone
      // from the map only; every binding it holds was audited).
      await expectConsistent(r.direct, r.service.config.namespace, r.devices, "redis without persistence", {
        settleMs: 20_000,
      });
    }, 60_000);
  });
});
