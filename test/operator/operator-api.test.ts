import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { forBackend } from "../support/backends.js";
import { backendEnv, counterValue, directKv, serviceConfig } from "../support/service.js";
import { operatorWorld, READER_TOKEN, type OperatorWorld } from "./support.js";

const M1 = "02:00:00:00:01:01";
const M2 = "02:00:00:00:01:02";
const M2_DASHES = "02-00-00-00-01-02";

/**
 * "Why is this laptop two devices?": a laptop known to Armis, and its USB NIC reported by an agent
 * under its own id. The operator merges them, splits them again, and pins hold against sightings.
 */
function operatorSuite(label: string, open: () => Promise<{ env: Record<string, string>; kv: IdentityKv }>) {
  describe(`operator actions over REST: merge, split, pins (${label})`, () => {
    let w: OperatorWorld;
    let kv: IdentityKv;
    const at = () => w.clock.now;
    beforeAll(async () => {
      const o = await open();
      kv = o.kv;
      w = await operatorWorld(o.env, o.kv);
      await w.publish([
        {
          device_id: "lap-1",
          mac: M1,
          ip: "10.0.0.5",
          partition: "p",
          metadata: { armis_device_id: "A1" },
          source: "armis",
          timestamp: at(),
        },
        {
          device_id: "agent-77",
          mac: M2,
          ip: "10.0.0.6",
          partition: "p",
          hostname: "lap-1",
          source: "agent",
          timestamp: at(),
        },
      ]);
      w.clock.advance(60_000);
    });
    afterAll(async () => {
      await (kv as { destroy?: () => Promise<void> } | undefined)?.destroy?.();
      await w?.close();
    });

    it("a reader may look but not merge: 403, and nothing changes", async () => {
      const r = await w.call("POST", "/v1/canonical-devices/agent-77/merge", { into: "lap-1" }, READER_TOKEN);
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe("permission_denied");
      const look = await w.call("GET", `/v1/canonical-devices/lookup?mac=${M2_DASHES}`, undefined, READER_TOKEN);
      expect(look.body.record.canonical_device_id).toBe("agent-77");
    });

    it("bad input names the field and changes nothing", async () => {
      expect((await w.call("POST", "/v1/canonical-devices/agent-77/merge", {})).body.error.field).toBe("body.into");
      const self = await w.call("POST", "/v1/canonical-devices/agent-77/merge", { into: "agent-77" });
      expect([self.status, self.body.error.field]).toEqual([400, "into"]);
      const missing = await w.call("POST", "/v1/canonical-devices/agent-77/merge", { into: "nobody" });
      expect(missing.status).toBe(404);
      const notBound = await w.call("POST", "/v1/canonical-devices/lap-1/split", {
        keys: [{ kind: "mac", value: M2 }],
      });
      expect([notBound.status, notBound.body.error.field]).toEqual([400, "keys[0]"]);
      const badMac = await w.call("POST", "/v1/canonical-devices/lap-1/split", {
        keys: [{ kind: "mac", value: "zz" }],
      });
      expect(badMac.body.error.field).toBe("keys[0].value");
      expect((await w.call("GET", `/v1/canonical-devices/lookup?mac=${M2}`)).body.record.canonical_device_id).toBe(
        "agent-77",
      );
    });

    it("merge: the first device's keys move to the second, its id redirects there, audited as manual_merge by the operator", async () => {
      const r = await w.call("POST", "/v1/canonical-devices/agent-77/merge", { into: "lap-1" });
      expect(r.status).toBe(200);
      expect(r.body.device_id).toBe("lap-1");
      expect(r.body.moved_keys).toEqual(
        expect.arrayContaining([
          { kind: "mac", value: M2 },
          { kind: "device-id", value: "agent-77" },
        ]),
      );
      expect(
        (await w.call("GET", `/v1/canonical-devices/lookup?mac=${M2_DASHES}`)).body.record.canonical_device_id,
      ).toBe("lap-1");
      const old = await w.call("GET", "/v1/canonical-devices/agent-77");
      expect(old.body.redirected_to).toBe("lap-1");
      const dev = await w.call("GET", "/v1/canonical-devices/lap-1/detail");
      expect(dev.body.redirects_in).toEqual(["agent-77"]);
      expect(dev.body.keys.find((k: any) => k.value === M2).pinned).toMatchObject({
        actor: expect.stringMatching(/^token:/),
      });
      expect(dev.body.record.attributes.mac).toBe(`${M1},${M2}`);
      const history = await w.call("GET", "/v1/canonical-devices/lap-1/history");
      const merged = history.body.entries.filter((e: any) => e.reason === "manual_merge");
      expect(merged.map((e: any) => e.key.value).sort()).toEqual(["10.0.0.6", M2, "agent-77", "p:10.0.0.6"].sort());
      expect(new Set(merged.map((e: any) => e.actor))).toEqual(
        new Set([dev.body.keys.find((k: any) => k.value === M2).pinned.actor]),
      );
    });

    it("split: the named keys become a new device (the merged id names it again), pinned there", async () => {
      w.clock.advance(60_000);
      const r = await w.call("POST", "/v1/canonical-devices/lap-1/split", {
        keys: [
          { kind: "mac", value: M2_DASHES },
          { kind: "device-id", value: "agent-77" },
        ],
      });
      expect(r.status).toBe(200);
      expect(r.body.device_id).toBe("agent-77");
      expect((await w.call("GET", `/v1/canonical-devices/lookup?mac=${M2}`)).body.record.canonical_device_id).toBe(
        "agent-77",
      );
      expect((await w.call("GET", `/v1/canonical-devices/lookup?mac=${M1}`)).body.record.canonical_device_id).toBe(
        "lap-1",
      );
      const lap = await w.call("GET", "/v1/canonical-devices/lap-1/detail");
      expect(lap.body.record.attributes.mac).toBe(M1);
      expect(lap.body.redirects_in).toEqual([]);
      const agent = await w.call("GET", "/v1/canonical-devices/agent-77/detail");
      expect(agent.body.redirected_to).toBeUndefined();
      expect(agent.body.keys.map((k: any) => [k.kind, k.value, !!k.pinned])).toEqual(
        expect.arrayContaining([
          ["device-id", "agent-77", true],
          ["mac", M2, true],
        ]),
      );
      const history = await w.call("GET", "/v1/canonical-devices/agent-77/history");
      expect(
        history.body.entries
          .filter((e: any) => e.reason === "manual_split")
          .map((e: any) => e.key.value)
          .sort(),
      ).toEqual(["agent-77", M2].sort());
    });

    it("a later weaker sighting does not undo the split: refused quietly, no pin conflict", async () => {
      w.clock.advance(60_000);
      const before = await counterValue(w.app, "identitymap_conflict_total", { reason: "weaker_assertion" });
      // The same evidence that linked them before (a MAC-level report naming both MACs under lap-1).
      const [r] = await w.publish([{ device_id: "lap-1", mac: `${M1},${M2}`, source: "agent", timestamp: at() }]);
      expect(r.canonical_device_id).toBe("lap-1");
      expect((await w.call("GET", `/v1/canonical-devices/lookup?mac=${M2}`)).body.record.canonical_device_id).toBe(
        "agent-77",
      );
      expect(await counterValue(w.app, "identitymap_conflict_total", { reason: "weaker_assertion" })).toBe(before + 1);
      expect((await w.call("GET", "/v1/pins/conflicts")).body.conflicts).toEqual([]);
    });

    it("a stronger conflicting sighting is refused, counted and shown as a pin conflict", async () => {
      w.clock.advance(60_000);
      const before = await counterValue(w.app, "identitymap_conflict_total", { reason: "pinned" });
      const [r] = await w.publish([
        {
          device_id: "lap-1",
          mac: `${M1},${M2}`,
          metadata: { armis_device_id: "A1" },
          source: "armis",
          timestamp: at(),
        },
      ]);
      expect(r.canonical_device_id).toBe("lap-1");
      expect((await w.call("GET", `/v1/canonical-devices/lookup?mac=${M2}`)).body.record.canonical_device_id).toBe(
        "agent-77",
      );
      expect(await counterValue(w.app, "identitymap_conflict_total", { reason: "pinned" })).toBe(before + 1);
      const conflicts = (await w.call("GET", "/v1/pins/conflicts", undefined, READER_TOKEN)).body.conflicts;
      expect(conflicts[0]).toMatchObject({
        key: { kind: "mac", value: M2 },
        from_device_id: "agent-77",
        to_device_id: "lap-1",
        reason: "pin_conflict",
      });
      const agentHistory = await w.call("GET", "/v1/canonical-devices/agent-77/history");
      expect(agentHistory.body.entries[0].reason).toBe("pin_conflict");
    });

    it("unpin lifts it: the next stronger sighting moves the key as the rules say; unpinning again is a 404", async () => {
      w.clock.advance(60_000);
      const path = `/v1/canonical-devices/agent-77/pins/mac/${M2_DASHES}`;
      expect((await w.call("DELETE", path, undefined, READER_TOKEN)).status).toBe(403);
      expect((await w.call("DELETE", path)).body).toEqual({ pinned: false });
      expect((await w.call("DELETE", path)).status).toBe(404);
      await w.publish([
        {
          device_id: "lap-1",
          mac: `${M1},${M2}`,
          metadata: { armis_device_id: "A1" },
          source: "armis",
          timestamp: at(),
        },
      ]);
      expect((await w.app.store.get({ kind: "mac", value: M2 }))?.record.canonicalDeviceId).toBe("lap-1");
      // Handed over between evidently different devices, the MAC alone is ambiguous for the window (ADR 0022).
      const byMac = await w.call("GET", `/v1/canonical-devices/lookup?mac=${M2}`);
      expect([byMac.status, byMac.body.error.candidates]).toEqual([409, ["agent-77", "lap-1"]]);
      // Pin it back where it now is: idempotent.
      expect((await w.call("PUT", `/v1/canonical-devices/lap-1/pins/mac/${M2}`)).body).toEqual({ pinned: true });
      expect((await w.call("PUT", `/v1/canonical-devices/lap-1/pins/mac/${M2}`)).body).toEqual({ pinned: true });
      const pinned = (await w.call("GET", "/v1/canonical-devices/lap-1/history")).body.entries.filter(
        (e: any) => e.reason === "pinned",
      );
      expect(pinned).toHaveLength(1);
    });

    it("the map stays consistent after the manual decisions (idmap check)", async () => {
      const { checkConsistency } = await import("../../src/app/check/consistency-check.js");
      const findings = await checkConsistency({
        kv: w.app.store.kv,
        namespace: w.app.config.namespace,
        devices: [w.app.devices],
        nowMs: w.clock.now,
      });
      expect(findings).toEqual([]);
    });
  });
}

operatorSuite("memory KV", async () => ({ env: {}, kv: new MemoryKv() }));
operatorSuite("flag off: the relational binding table", async () => ({
  env: { CANONICAL_IDENTITY_MAP_ENABLED: "off" },
  kv: new MemoryKv(),
}));
for (const backend of ["redis", "jetstream", "etcd"] as const)
  forBackend(backend, () =>
    operatorSuite(`${backend} server`, async () => {
      const env = backendEnv(backend);
      return { env, kv: await directKv(serviceConfig(env, ":memory:")) };
    }),
  );
