import * as grpc from "@grpc/grpc-js";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { startGrpcServer, type GrpcServer } from "../../src/adapters/grpc/grpc-server.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import { loadConfig } from "../../src/app/config.js";
import { createApp, type App } from "../../src/app/container.js";
import { startServer, type RunningServer } from "../../src/app/server.js";
import { ManualClock, testApp } from "../support/app.js";
import { capturedLogger } from "../metrics/capture.js";
import { FaultyKv } from "../metrics/faults.js";

const READER = "reader-token-6d2f0a91";
const WRITER = "writer-token-e47b13c8";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
async function restOn(app: App): Promise<FastifyInstance> {
  const rest = await buildRestApp(app);
  cleanups.push(async () => {
    await rest.close();
    await app.close();
  });
  return rest;
}

// Defect 6 of issue 12: a timestamp in microseconds landed bindings in year 58 900, and every later
// correct report at that address was refused as out of order, for ever.
describe("timestamps too far in the future", () => {
  it("are rejected with a reason like an invalid identifier, and the update is timed by the clock", async () => {
    const { app, clock } = await testApp({ IDMAP_MAX_CLOCK_SKEW: "5m" });
    const rest = await restOn(app);
    const publish = async (u: object) =>
      (await rest.inject({ method: "POST", url: "/v1/device-updates", payload: { updates: [u] } })).json().results[0];
    const micros = clock.nowMs() * 1000;
    const first = await publish({ device_id: "d-micro", ip: "10.6.0.1", mac: "02:00:00:00:06:01", timestamp: micros });
    expect(first.outcome).toBe("created");
    expect(first.rejected_identifiers).toEqual([
      { field: "timestamp", value: String(micros), reason: "timestamp_in_future" },
    ]);
    // Within the allowed skew: accepted as given.
    const near = await publish({ device_id: "d-near", ip: "10.6.0.2", timestamp: clock.nowMs() + 4 * 60_000 });
    expect(near.rejected_identifiers).toBeUndefined();

    // A correct later report of another device at that address takes it over (it would have been refused).
    clock.advance(60_000);
    const next = await publish({
      device_id: "d-next",
      ip: "10.6.0.1",
      mac: "02:00:00:00:06:02",
      timestamp: clock.nowMs(),
    });
    expect(next.outcome).toBe("created");
    const r = await rest.inject({ method: "GET", url: "/v1/canonical-devices/lookup?ip=10.6.0.1" });
    expect(r.json().record.canonical_device_id).toBe("d-next");
  });
});

describe("a lookup while the KV is down", () => {
  it("answers 503 on a miss, not 404 (the device may well exist)", async () => {
    const kv = new FaultyKv();
    const { app } = await testApp({}, kv);
    const rest = await restOn(app);
    kv.down = true;
    const get = await rest.inject({ method: "GET", url: "/v1/canonical-devices/lookup?mac=02-00-00-00-07-01" });
    expect(get.statusCode).toBe(503);
    expect(get.json().error.code).toBe("kv_unavailable");
    const post = await rest.inject({
      method: "POST",
      url: "/v1/canonical-devices/lookup",
      payload: { identity_keys: [{ kind: "mac", value: "02-00-00-00-07-01" }] },
    });
    expect(post.statusCode).toBe(503);
  });
});

describe("failed authentication", () => {
  it("is logged without the token and counted, on REST and gRPC", async () => {
    const config = loadConfig({
      IDMAP_DATA_DIR: ":memory:",
      IDMAP_LOG_LEVEL: "info",
      IDMAP_REST_PORT: "0",
      IDMAP_GRPC_PORT: "0",
      CANONICAL_IDENTITY_MAP_ENABLED: "on",
      IDMAP_KV_BACKEND: "memory",
      IDMAP_AUTH_TOKENS: `${READER}:reader,${WRITER}:writer`,
    });
    const logs = capturedLogger(config);
    const server: RunningServer = await startServer(
      config,
      await createApp(config, { clock: new ManualClock(), logger: logs.logger }),
    );
    cleanups.push(() => server.close());
    const base = `http://127.0.0.1:${server.restPort}`;
    const guessed = "guessed-token-0000000000";
    const bad = await fetch(`${base}/v1/canonical-devices/lookup?mac=02-00-00-00-08-01`, {
      headers: { authorization: `Bearer ${guessed}` },
    });
    expect(bad.status).toBe(401);
    const denied = await fetch(`${base}/v1/device-updates`, {
      method: "POST",
      headers: { authorization: `Bearer ${READER}`, "content-type": "application/json" },
      body: JSON.stringify({ updates: [{ device_id: "x" }] }),
    });
    expect(denied.status).toBe(403);
    const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    const code = await new Promise<number>((resolve) =>
      client.makeUnaryRequest(
        "/identitymap.v1.IdentityMapService/GetCanonicalDevice",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        new grpc.Metadata(),
        (err) => resolve(err?.code ?? 0),
      ),
    );
    client.close();
    expect(code).toBe(grpc.status.UNAUTHENTICATED);

    const refusals = logs.lines().filter((l) => l.msg === "authentication failed");
    expect(refusals.map((l) => [l.transport, l.code])).toEqual([
      ["rest", "unauthenticated"],
      ["rest", "permission_denied"],
      ["grpc", "unauthenticated"],
    ]);
    expect(logs.text()).not.toContain(guessed);
    expect(logs.text()).not.toContain(READER);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('identitymap_auth_failures_total{transport="rest",code="unauthenticated"} 1');
    expect(metrics).toContain('identitymap_auth_failures_total{transport="rest",code="permission_denied"} 1');
    expect(metrics).toContain('identitymap_auth_failures_total{transport="grpc",code="unauthenticated"} 1');
  });
});

describe("gRPC", () => {
  it("answers INVALID_ARGUMENT, naming the request, to bytes that are not a protobuf message", async () => {
    const { app } = await testApp({ IDMAP_GRPC_PORT: "0" });
    const server: GrpcServer = await startGrpcServer(app);
    cleanups.push(async () => {
      await server.close();
      await app.close();
    });
    const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.makeUnaryRequest(
        "/identitymap.v1.IdentityMapService/PublishDeviceUpdates",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
        new grpc.Metadata(),
        (e) => resolve(e),
      ),
    );
    client.close();
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.metadata.get("idmap-error-field")).toEqual(["request"]);
  });
});
