import { afterAll, beforeAll, describe, it } from "vitest";
import { forBackend } from "../support/backends.js";
import { expectSurvivedOutage, serverOutage, type OutageResult } from "../support/outage-scenario.js";
import { redisServer, type PrivateServer } from "../support/servers.js";

forBackend("redis", () => {
  describe("redis outage (appendonly yes, appendfsync always)", () => {
    let server: PrivateServer & { url: string };
    let result: OutageResult | undefined;
    beforeAll(async () => {
      server = await redisServer(true);
    });
    afterAll(async () => {
      await result?.cleanup();
      await server?.stop();
    });

    it("answers 503 within the request timeout while Redis is dead, recovers without a restart, and loses no acknowledged update", async () => {
      result = await serverOutage({ backend: "redis", server, address: server.url, outageMs: 2_500 });
      await expectSurvivedOutage("redis durable", result);
    }, 60_000);
  });
});
