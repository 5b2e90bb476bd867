import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGrpcServer, type GrpcServer } from "../../src/adapters/grpc/grpc-server.js";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { KvUnavailable } from "../../src/domain/errors.js";
import { testApp } from "../support/app.js";
import { identityMapClient, type IdentityMapClient } from "../support/grpc.js";

/** A store whose cluster lost its majority: every call fails as the clustered adapters report it. */
class NoQuorumKv extends MemoryKv {
  lost = false;
  override async getMany(keys: readonly string[]) {
    this.check();
    return super.getMany(keys);
  }
  override async create(key: string, value: Uint8Array) {
    this.check();
    return super.create(key, value);
  }
  private check(): void {
    if (this.lost) throw new KvUnavailable("test: no quorum (no member has a leader)", { reason: "no_quorum" });
  }
}

const update = { device_id: "q:10.0.0.1", ip: "10.0.0.1", partition: "q", mac: "02:00:00:00:00:01" };

describe("a store without quorum, as the front-ends answer it", () => {
  let app: App;
  let kv: NoQuorumKv;
  let grpcServer: GrpcServer;
  let client: IdentityMapClient;
  beforeAll(async () => {
    kv = new NoQuorumKv();
    ({ app } = await testApp({ IDMAP_GRPC_PORT: "0" }, kv));
    grpcServer = await startGrpcServer(app);
    client = identityMapClient(`127.0.0.1:${grpcServer.port}`);
    kv.lost = true;
  });
  afterAll(async () => {
    client.close();
    await grpcServer.close();
    await app.close();
  });

  it("REST: 503 kv_unavailable with reason no_quorum", async () => {
    const rest = await buildRestApp(app);
    try {
      const r = await rest.inject({ method: "POST", url: "/v1/device-updates", payload: { updates: [update] } });
      expect(r.statusCode).toBe(503);
      expect(r.json().error).toMatchObject({ code: "kv_unavailable", reason: "no_quorum" });
    } finally {
      await rest.close();
    }
  });

  it("gRPC: UNAVAILABLE with the code and the reason in the trailing metadata", async () => {
    const err = await client.call("PublishDeviceUpdates", { updates: [update] }).catch((e) => e);
    expect(err.code).toBe(14);
    expect(err.metadata.get("idmap-error-code")).toEqual(["kv_unavailable"]);
    expect(err.metadata.get("idmap-error-reason")).toEqual(["no_quorum"]);
  });
});
