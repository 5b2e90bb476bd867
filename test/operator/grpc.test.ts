import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGrpcServer, type GrpcServer } from "../../src/adapters/grpc/grpc-server.js";
import { identityMapClient, statusOf, type IdentityMapClient } from "../support/grpc.js";
import { operatorWorld, READER_TOKEN, WRITER_TOKEN, type OperatorWorld } from "./support.js";

const M1 = "02:00:00:00:04:01";
const M2 = "02:00:00:00:04:02";

/** The operator's RPCs: the same decisions as REST, writer role, audited with the token's actor. */
describe("operator RPCs over gRPC", () => {
  let w: OperatorWorld;
  let server: GrpcServer;
  let client: IdentityMapClient;
  beforeAll(async () => {
    w = await operatorWorld({ IDMAP_GRPC_PORT: "0" });
    server = await startGrpcServer(w.app);
    client = identityMapClient(`127.0.0.1:${server.port}`);
    await w.publish([
      { device_id: "srv-1", mac: M1, metadata: { armis_device_id: "A9" }, source: "armis", timestamp: w.clock.now },
      { device_id: "srv-1-ilo", mac: M2, source: "agent", timestamp: w.clock.now },
    ]);
    w.clock.advance(1_000);
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
    await w?.close();
  });

  it("a reader is PERMISSION_DENIED; a writer merges, and the audit names the writer's token", async () => {
    const req = { device_id: "srv-1-ilo", into: "srv-1" };
    expect((await statusOf(client.call("MergeCanonicalDevice", req, READER_TOKEN))).code).toBe(
      grpc.status.PERMISSION_DENIED,
    );
    const r = await client.call("MergeCanonicalDevice", req, WRITER_TOKEN);
    expect(r.device_id).toBe("srv-1");
    expect(r.moved_keys).toContainEqual({ kind: "IDENTITY_KIND_MAC", value: M2 });
    const history = await client.call("GetDeviceHistory", { device_id: "srv-1" }, READER_TOKEN);
    const merged = history.entries.filter((e: any) => e.reason === "manual_merge");
    expect(merged.length).toBeGreaterThan(0);
    expect(merged[0].actor).toMatch(/^token:/);
  });

  it("split with a kind left UNSPECIFIED is INVALID_ARGUMENT naming the field; then a split, pin and unpin", async () => {
    const bad = await statusOf(
      client.call("SplitCanonicalDevice", { device_id: "srv-1", keys: [{ kind: 0, value: M2 }] }, WRITER_TOKEN),
    );
    expect([bad.code, bad.field]).toEqual([grpc.status.INVALID_ARGUMENT, "keys[0].kind"]);
    const split = await client.call(
      "SplitCanonicalDevice",
      { device_id: "srv-1", keys: [{ kind: "IDENTITY_KIND_MAC", value: M2.toLowerCase() }] },
      WRITER_TOKEN,
    );
    expect(split.device_id).toMatch(/^srv-1~split-[0-9a-f]{8}$/);
    const key = { kind: "IDENTITY_KIND_MAC", value: M1 };
    expect((await client.call("PinIdentityKey", { device_id: "srv-1", key }, WRITER_TOKEN)).pinned).toBe(true);
    expect((await client.call("UnpinIdentityKey", { device_id: "srv-1", key }, WRITER_TOKEN)).pinned).toBe(false);
    expect((await statusOf(client.call("UnpinIdentityKey", { device_id: "srv-1", key }, WRITER_TOKEN))).code).toBe(
      grpc.status.NOT_FOUND,
    );
  });

  it("as of a time: who held the MAC then", async () => {
    const r = await client.call(
      "GetCanonicalDeviceAsOf",
      { identity_keys: [{ kind: "IDENTITY_KIND_MAC", value: M2 }], at_unix_millis: w.clock.now - 500 },
      READER_TOKEN,
    );
    expect(r).toMatchObject({ found: true, device_id: "srv-1-ilo", actor: expect.stringMatching(/^token:/) });
    const none = await client.call(
      "GetCanonicalDeviceAsOf",
      { identity_keys: [{ kind: "IDENTITY_KIND_MAC", value: M2 }], at_unix_millis: 1 },
      READER_TOKEN,
    );
    expect(none.found).toBe(false);
  });
});
