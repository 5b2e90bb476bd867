import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { startGrpcServer, type GrpcServer } from "../../src/adapters/grpc/grpc-server.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";
import { identityMapClient, statusOf, type IdentityMapClient } from "../support/grpc.js";

let app: App;
let rest: FastifyInstance;
let grpcServer: GrpcServer;
let grpc: IdentityMapClient;

beforeAll(async () => {
  ({ app } = await testApp({ IDMAP_GRPC_PORT: "0" }, new MemoryKv()));
  rest = await buildRestApp(app);
  grpcServer = await startGrpcServer(app);
  grpc = identityMapClient(`127.0.0.1:${grpcServer.port}`);
  const sweep = { ip: "10.1.0.9", partition: "p", source: "sweep" };
  const known = {
    device_id: "dev-K",
    ip: "10.1.0.5",
    partition: "p",
    mac: "02:00:00:00:00:01",
    metadata: { armis_device_id: "A1" },
    source: "armis",
  };
  const r = await rest.inject({ method: "POST", url: "/v1/device-updates", payload: { updates: [known, sweep] } });
  expect(r.statusCode).toBe(200);
});
afterAll(async () => {
  grpc.close();
  await grpcServer.close();
  await rest.close();
  await app.close();
});

const dock = { device_id: "dev-L", ip: "10.1.0.9", partition: "p", mac: "02:00:00:00:00:01", source: "armis" };
const contradicting = { ...dock, metadata: { armis_device_id: "A2" } };

describe("provisional devices in lookups", () => {
  it("REST and gRPC say a sweep's device is provisional, and a known one is not", async () => {
    const p = await rest.inject({ method: "GET", url: "/v1/canonical-devices/lookup?ip=10.1.0.9&partition=p" });
    expect(p.json().record).toMatchObject({ canonical_device_id: "p:10.1.0.9", provisional: true });
    const k = await rest.inject({ method: "GET", url: "/v1/canonical-devices/lookup?device_id=dev-K" });
    expect(k.json().record.provisional).toBe(false);
    const g = await grpc.call("GetCanonicalDevice", {
      identity_keys: [{ kind: "IDENTITY_KIND_DEVICE_ID", value: "p:10.1.0.9" }],
    });
    expect(Number(g.record.provisional_since_unix_millis)).toBeGreaterThan(0);
  });
});

describe("explain: POST /v1/device-updates/resolve and ResolveDeviceUpdates", () => {
  it("REST returns the trace only when asked: the vetoed candidate with the differing Armis id, the take-over, the rule", async () => {
    const plain = await rest.inject({
      method: "POST",
      url: "/v1/device-updates/resolve",
      payload: { updates: [contradicting] },
    });
    expect(plain.json().results[0].trace).toBeUndefined();
    const r = await rest.inject({
      method: "POST",
      url: "/v1/device-updates/resolve",
      payload: { updates: [contradicting], explain: true },
    });
    expect(r.statusCode).toBe(200);
    const trace = r.json().results[0].trace;
    expect(trace.rule).toBe("provisional_take_over");
    expect(trace.provisional).toEqual({ action: "take_over", device_id: "p:10.1.0.9" });
    expect(trace.candidates[0]).toEqual({
      device_id: "dev-K",
      key: { kind: "mac", value: "02:00:00:00:00:01" },
      verdict: "vetoed",
      provisional: false,
      differing: [{ kind: "armis-id", update: "A2", device: "A1" }],
    });
  });

  it("a non-boolean explain is a 400 naming the field, and nothing is resolved", async () => {
    const r = await rest.inject({
      method: "POST",
      url: "/v1/device-updates/resolve",
      payload: { updates: [dock], explain: "yes" },
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe("invalid_argument");
  });

  it("gRPC gives the same trace", async () => {
    const r = await grpc.call("ResolveDeviceUpdates", {
      updates: [{ ...contradicting, metadata: { armis_device_id: "A2" } }],
      explain: true,
    });
    const trace = r.results[0].trace;
    expect(trace.rule).toBe("provisional_take_over");
    expect(trace.provisional).toMatchObject({ action: "take_over", device_id: "p:10.1.0.9" });
    expect(trace.candidates[0]).toMatchObject({
      device_id: "dev-K",
      verdict: "vetoed",
      key: { kind: "IDENTITY_KIND_MAC", value: "02:00:00:00:00:01" },
      differing: [{ kind: "armis-id", update: "A2", device: "A1" }],
    });
  });
});

describe("explain: shared MACs in the trace, on REST and gRPC alike", () => {
  it("names the MAC a decision contests, quarantines, or ignores as quarantined", async () => {
    const mac = "02:00:00:00:0D:1E";
    const t = app.clock.nowMs() - 4 * 3_600_000;
    const hour = 3_600_000;
    const lap = (name: string, at: number) => ({
      device_id: name,
      ip: `10.3.0.${name === "lap-X" ? 1 : name === "lap-Y" ? 2 : 3}`,
      partition: "p",
      mac,
      hostname: name,
      metadata: { armis_device_id: `A-${name}` },
      source: "armis",
      timestamp: at,
    });
    const publish = async (u: { timestamp: number }) =>
      expect(
        (await rest.inject({ method: "POST", url: "/v1/device-updates", payload: { updates: [u] } })).statusCode,
      ).toBe(200);
    const restTrace = async (u: { timestamp: number }) => {
      const r = await rest.inject({
        method: "POST",
        url: "/v1/device-updates/resolve",
        payload: { updates: [u], explain: true },
      });
      expect(r.statusCode).toBe(200);
      return r.json().results[0].trace;
    };
    // gRPC's observation time is `timestamp_unix_millis` (its `timestamp` is RFC 3339 text).
    const grpcTrace = async ({ timestamp, ...u }: { timestamp: number }) =>
      (
        await grpc.call("ResolveDeviceUpdates", {
          updates: [{ ...u, timestamp_unix_millis: timestamp }],
          explain: true,
        })
      ).results[0].trace;
    const onWire = { kind: "IDENTITY_KIND_MAC", value: mac };

    await publish(lap("lap-Y", t + hour));
    // lap-X held the MAC before lap-Y, reported only now: contested, not moved.
    const late = lap("lap-X", t);
    expect((await restTrace(late)).contested).toEqual([{ kind: "mac", value: mac }]);
    expect((await grpcTrace(late)).contested).toEqual([onWire]);
    await publish(late);
    // lap-Z takes it in order: the second hand-over in the window quarantines it.
    const taker = lap("lap-Z", t + 2 * hour);
    expect((await restTrace(taker)).quarantined).toEqual([{ kind: "mac", value: mac }]);
    expect((await grpcTrace(taker)).quarantined).toEqual([onWire]);
    await publish(taker);
    // A report with the quarantined MAC: ignored, said so.
    const anon = { ip: "10.3.0.9", partition: "p", mac, source: "agent", timestamp: t + 3 * hour };
    const rt = await restTrace(anon);
    expect(rt.quarantined_ignored).toEqual([{ kind: "mac", value: mac }]);
    expect(rt.contested).toBeUndefined();
    const gt = await grpcTrace(anon);
    expect(gt.quarantined_ignored).toEqual([onWire]);
    expect(gt.contested).toEqual([]);
    // Released, so the quarantine list the next test reads is its own.
    const released = await rest.inject({ method: "DELETE", url: `/v1/identifiers/quarantined/mac/${mac}` });
    expect(released.statusCode).toBe(200);
  });
});

describe("ambiguity over gRPC", () => {
  it("GetCanonicalDevice by a quarantined MAC is found: false with ambiguous {key, candidates}", async () => {
    const dock = "02:00:00:00:0D:0D";
    // The service's clock, not the machine's: a timestamp ahead of it is refused (issue 12).
    const t = app.clock.nowMs() - 3 * 3_600_000;
    const lap = (name: string, armisId: string, macs: string, at: number) => ({
      device_id: name,
      ip: name === "lap-A" ? "10.2.0.1" : "10.2.0.2",
      partition: "p",
      mac: macs,
      hostname: name,
      metadata: { armis_device_id: armisId },
      source: "armis",
      timestamp: at,
    });
    for (const u of [
      lap("lap-A", "A7", `02:00:00:00:00:AA,${dock}`, t),
      lap("lap-B", "A8", dock, t + 3_600_000),
      lap("lap-A", "A7", `02:00:00:00:00:AA,${dock}`, t + 2 * 3_600_000),
    ]) {
      const r = await rest.inject({ method: "POST", url: "/v1/device-updates", payload: { updates: [u] } });
      expect(r.statusCode).toBe(200);
    }
    const g = await grpc.call("GetCanonicalDevice", { identity_keys: [{ kind: "IDENTITY_KIND_MAC", value: dock }] });
    expect(g.found).toBe(false);
    expect(g.ambiguous).toMatchObject({
      key: { kind: "IDENTITY_KIND_MAC", value: dock },
      candidates: ["lap-A", "lap-B"],
    });

    // Listed and released over gRPC as over REST (the quarantine room is the same).
    const listed = await grpc.call("ListQuarantinedIdentifiers", {});
    expect(listed.identifiers).toEqual([
      {
        key: { kind: "IDENTITY_KIND_MAC", value: dock },
        quarantined_since_unix_millis: expect.any(Number),
        candidates: ["lap-A", "lap-B"],
      },
    ]);
    const notMac = await statusOf(
      grpc.call("ReleaseQuarantinedIdentifier", { key: { kind: "IDENTITY_KIND_IP", value: "10.2.0.1" } }),
    );
    expect(notMac).toMatchObject({ code: 3, errorCode: "invalid_argument", field: "kind" });
    // Any MAC notation names it.
    const released = await grpc.call("ReleaseQuarantinedIdentifier", {
      key: { kind: "IDENTITY_KIND_MAC", value: "0200.0000.0d0d" },
    });
    expect(released).toEqual({ released: true });
    expect((await grpc.call("ListQuarantinedIdentifiers", {})).identifiers).toEqual([]);
    const again = await statusOf(
      grpc.call("ReleaseQuarantinedIdentifier", { key: { kind: "IDENTITY_KIND_MAC", value: dock } }),
    );
    expect(again).toMatchObject({ code: 5, errorCode: "not_found" });
  });
});
