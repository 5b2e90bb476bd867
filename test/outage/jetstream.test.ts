import { afterAll, beforeAll, describe, it } from "vitest";
import { forBackend } from "../support/backends.js";
import { expectSurvivedOutage, serverOutage, type OutageResult } from "../support/outage-scenario.js";
import { natsServer, type PrivateServer } from "../support/servers.js";

forBackend("jetstream", () => {
  describe("jetstream outage (nats-server defaults: acknowledged before fsync)", () => {
    let server: PrivateServer & { url: string };
    let result: OutageResult | undefined;
    beforeAll(async () => {
      server = await natsServer();
    });
    afterAll(async () => {
      await result?.cleanup();
      await server?.stop();
    });

    it("answers 503 within the request timeout while the server is dead, recovers without a restart, and loses no acknowledged update", async () => {
      result = await serverOutage({ backend: "jetstream", server, address: server.url, outageMs: 2_500 });
      await expectSurvivedOutage("jetstream", result);
    }, 60_000);
  });
});
