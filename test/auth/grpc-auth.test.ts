import * as grpc from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGrpcServer, type GrpcServer } from "../../src/adapters/grpc/grpc-server.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";
import { identityMapClient, statusOf, type IdentityMapClient } from "../support/grpc.js";

const READER = "reader-5d8e1f-4c2a9b";
const WRITER = "writer-0a9b3c-77d1e6";
let app: App;
let server: GrpcServer;
let c: IdentityMapClient;

beforeAll(async () => {
  ({ app } = await testApp({ IDMAP_GRPC_PORT: "0", IDMAP_AUTH_TOKENS: `${READER}:reader,${WRITER}:writer` }));
  server = await startGrpcServer(app);
  c = identityMapClient(`127.0.0.1:${server.port}`);
});
afterAll(async () => {
  c.close();
  await server.close();
  await app.close();
});

const lookup = { identity_keys: [{ kind: "IDENTITY_KIND_ARMIS_ID", value: "A-9" }] };
const publish = { updates: [{ device_id: "auth-dev", metadata: { armis_device_id: "A-9" }, source: "armis" }] };

describe("gRPC bearer tokens in `authorization` metadata", () => {
  it("UNAUTHENTICATED without a token or with an unknown one, on every service", async () => {
    for (const [method, req] of [
      ["GetCanonicalDevice", lookup],
      ["BatchGetCanonicalDevices", { lookups: [lookup] }],
      ["ResolveDeviceUpdates", publish],
      ["PublishDeviceUpdates", publish],
      ["GetDeviceHistory", { device_id: "auth-dev" }],
    ] as const) {
      expect((await statusOf(c.call(method, req))).code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await statusOf(c.call(method, req, "wrong"))).code).toBe(grpc.status.UNAUTHENTICATED);
    }
    const core = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const code = await new Promise<number>((resolve) =>
      core.makeUnaryRequest(
        "/core.CoreService/GetCanonicalDevice",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x1a, 0x03, 0x31, 0x2e, 0x31]),
        new grpc.Metadata(),
        (err) => resolve(err?.code ?? 0),
      ),
    );
    core.close();
    expect(code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("PERMISSION_DENIED for a reader publishing; a reader may look up, resolve and read history", async () => {
    expect((await statusOf(c.call("PublishDeviceUpdates", publish, READER))).code).toBe(grpc.status.PERMISSION_DENIED);
    const r = await c.call("PublishDeviceUpdates", publish, WRITER);
    expect(r.results[0].outcome).toBe("PUBLISH_OUTCOME_CREATED");
    expect((await c.call("GetCanonicalDevice", lookup, READER)).found).toBe(true);
    expect((await c.call("ResolveDeviceUpdates", publish, READER)).results[0].canonical_device_id).toBe("auth-dev");
    const h = await c.call("GetDeviceHistory", { device_id: "auth-dev" }, READER);
    expect(h.entries.map((e: { actor: string }) => e.actor)).toContain(
      `token:${createHash("sha256").update(WRITER).digest("hex").slice(0, 8)}`,
    );
  });
});
