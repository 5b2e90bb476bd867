import { connect } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { serve, type Serving } from "../../src/app/server.js";
import { forBackend } from "../support/backends.js";
import { freePort, redisServer } from "../support/servers.js";
import { serviceConfig, tempDir } from "../support/service.js";

/** Whether anything accepts a TCP connection on the port. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });

const get = async (port: number, path: string) => {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, body: (await r.json()) as any };
};

// Defect 7 of issue 12: the service exited at start when its KV did not answer. It now starts unready,
// answers 503 with the envelope, and becomes ready by itself once the store is there.
describe("a store that does not answer at start", () => {
  forBackend("redis", () => {
    const data = tempDir("start-unready");
    let serving: Serving | undefined;
    let redis: Awaited<ReturnType<typeof redisServer>> | undefined;
    afterAll(async () => {
      await serving?.close();
      await redis?.stop();
      data.remove();
    });

    it("Redis: unready and 503 meanwhile, gRPC not listening; ready by itself once Redis starts", async () => {
      redis = await redisServer(true);
      await redis.kill9();
      const [restPort, grpcPort] = [await freePort(), await freePort()];
      let attempts = 0;
      const config = serviceConfig(
        {
          IDMAP_KV_BACKEND: "redis",
          IDMAP_REDIS_URL: redis.url,
          IDMAP_REST_PORT: `${restPort}`,
          IDMAP_GRPC_PORT: `${grpcPort}`,
        },
        data.dir,
      );
      serving = await serve(config, {
        retryDelayMs: () => 200,
        open: async (c) => {
          attempts++;
          return (await import("../../src/app/container.js")).createApp(c);
        },
      });

      expect(await get(restPort, "/healthz")).toEqual({ status: 200, body: { status: "starting" } });
      expect(await get(restPort, "/readyz")).toMatchObject({ status: 503, body: { kv: "unavailable", db: "ok" } });
      const lookup = await get(restPort, "/v1/canonical-devices/lookup?mac=02:00:00:00:00:01");
      expect(lookup.status).toBe(503);
      expect(lookup.body.error.code).toBe("kv_unavailable");
      expect(lookup.body.error.message).toMatch(/redis.*retrying/);
      expect(await listening(grpcPort)).toBe(false);
      await new Promise((r) => setTimeout(r, 700));
      expect(attempts).toBeGreaterThanOrEqual(3);

      await redis.start();
      const running = await Promise.race([
        serving.ready,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("not ready within 15 s")), 15_000)),
      ]);
      expect(running.restPort).toBe(restPort);
      expect((await get(restPort, "/readyz")).status).toBe(200);
      expect(await listening(grpcPort)).toBe(true);
      const r = await fetch(`http://127.0.0.1:${restPort}/v1/device-updates`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ updates: [{ device_id: "d-1", mac: "02:00:00:00:00:01" }] }),
      });
      expect(r.status).toBe(200);
      expect((await get(restPort, "/v1/canonical-devices/lookup?mac=02:00:00:00:00:01")).status).toBe(200);
    }, 40_000);
  });

  forBackend("postgres", () => {
    it("PostgreSQL: unready naming the database; close() ends the retrying promptly", async () => {
      const data = tempDir("start-unready-pg");
      const restPort = await freePort();
      const serving = await serve(
        serviceConfig(
          {
            IDMAP_DB: "postgres",
            IDMAP_DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort()}/nothing`,
            IDMAP_REST_PORT: `${restPort}`,
            IDMAP_FRONTENDS: "rest",
          },
          data.dir,
        ),
        { retryDelayMs: () => 100 },
      );
      try {
        expect(await get(restPort, "/readyz")).toMatchObject({ status: 503, body: { kv: "ok", db: "unavailable" } });
        const r = await get(restPort, "/v1/canonical-devices/d-1");
        expect(r).toMatchObject({ status: 503, body: { error: { code: "db_unavailable" } } });
      } finally {
        const t0 = Date.now();
        await serving.close();
        expect(Date.now() - t0).toBeLessThan(5_000);
        await expect(serving.ready).rejects.toThrow(/closed/);
        expect(await listening(restPort)).toBe(false);
        data.remove();
      }
    }, 30_000);
  });
});
