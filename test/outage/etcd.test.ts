import { afterAll, beforeAll, describe, it } from "vitest";
import { forBackend } from "../support/backends.js";
import { expectSurvivedOutage, serverOutage, type OutageResult } from "../support/outage-scenario.js";
import { etcdServer, type PrivateServer } from "../support/servers.js";

forBackend("etcd", () => {
  describe("etcd outage (default: WAL fsynced before the reply)", () => {
    let server: PrivateServer & { endpoint: string };
    let result: OutageResult | undefined;
    beforeAll(async () => {
      server = await etcdServer();
    });
    afterAll(async () => {
      await result?.cleanup();
      await server?.stop();
    });

    it("answers 503 within the request timeout while the server is dead, recovers without a restart, and loses no acknowledged update", async () => {
      result = await serverOutage({ backend: "etcd", server, address: server.endpoint, outageMs: 2_500 });
      await expectSurvivedOutage("etcd", result);
    }, 60_000);
  });
});
