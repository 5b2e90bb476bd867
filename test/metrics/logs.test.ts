import type pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/app/config.js";
import { createApp, type App } from "../../src/app/container.js";
import { startServer, type RunningServer } from "../../src/app/server.js";
import { ManualClock } from "../support/app.js";
import { capturedLogger } from "./capture.js";
import { FaultyKv } from "./faults.js";

const WRITER_TOKEN = "wr1ter-7c0f3e9a52d84b1e";
const READER_TOKEN = "re4der-19be44c2a0f7d6e3";
const REDIS_PASSWORD = "r3dis-pw-6a1d0c";
const DB_PASSWORD = "pg-pw-0e9d2b7f";

let server: RunningServer | undefined;
let app: App | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  await app?.close();
  app = undefined;
});

describe("structured logs", () => {
  it("take their level from IDMAP_LOG_LEVEL", async () => {
    const config = loadConfig({ IDMAP_DATA_DIR: ":memory:", IDMAP_KV_BACKEND: "memory", IDMAP_LOG_LEVEL: "warn" });
    app = await createApp(config);
    expect((app.log as pino.Logger).level).toBe("warn");

    const logs = capturedLogger(config);
    logs.logger.info({}, "not shown");
    logs.logger.warn({}, "shown");
    expect(logs.lines().map((l) => l.msg)).toEqual(["shown"]);
  });

  it("never contain a token or a password: not from request headers, config, error messages or fields", async () => {
    const config = loadConfig({
      IDMAP_DATA_DIR: ":memory:",
      IDMAP_LOG_LEVEL: "debug",
      IDMAP_FRONTENDS: "rest",
      IDMAP_REST_PORT: "0",
      CANONICAL_IDENTITY_MAP_ENABLED: "on",
      IDMAP_AUTH_TOKENS: `${WRITER_TOKEN}:writer,${READER_TOKEN}:reader`,
      IDMAP_REDIS_URL: `redis://default:${REDIS_PASSWORD}@127.0.0.1:6379`,
      IDMAP_DATABASE_URL: `postgres://idmap:${DB_PASSWORD}@127.0.0.1:5432/idmap`,
    });
    const logs = capturedLogger(config);
    const kv = new FaultyKv();
    server = await startServer(config, await createApp(config, { clock: new ManualClock(), logger: logs.logger, kv }));
    const base = `http://127.0.0.1:${server.restPort}`;
    const call = (path: string, token: string, body?: object) =>
      fetch(`${base}${path}`, {
        method: body ? "POST" : "GET",
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
    const laptop = {
      device_id: "p:10.0.0.5",
      ip: "10.0.0.5",
      partition: "p",
      mac: "02:00:00:00:00:01",
      metadata: { armis_device_id: "A1" },
      source: "armis",
    };

    expect((await call("/v1/device-updates", WRITER_TOKEN, { updates: [laptop] })).status).toBe(200);
    expect(
      (
        await call("/v1/device-updates", WRITER_TOKEN, {
          updates: [{ ...laptop, device_id: "p:10.0.0.9", ip: "10.0.0.9" }],
        })
      ).status,
    ).toBe(200);
    expect((await call("/v1/canonical-devices/lookup?mac=02:00:00:00:00:01", READER_TOKEN)).status).toBe(200);
    expect((await call("/v1/device-updates", READER_TOKEN, { updates: [laptop] })).status).toBe(403);
    expect((await call("/v1/device-updates", `${WRITER_TOKEN}x`, { updates: [laptop] })).status).toBe(401);
    kv.down = true; // a 503: the error handler and the publish service both log it
    expect(
      (
        await call("/v1/device-updates", WRITER_TOKEN, {
          updates: [{ ...laptop, device_id: "p:10.0.0.7", ip: "10.0.0.7" }],
        })
      ).status,
    ).toBe(503);
    kv.down = false;

    // Code that carelessly logs a credential, by field name or inside a message, is covered too.
    app = server.app;
    app.log.info({ headers: { authorization: `Bearer ${WRITER_TOKEN}` }, token: READER_TOKEN }, "careless fields");
    app.log.error(
      { err: `connect to redis://default:${REDIS_PASSWORD}@127.0.0.1:6379 failed`, url: config.databaseUrl },
      "careless message",
    );
    app = undefined;

    const text = logs.text();
    for (const secret of [WRITER_TOKEN, READER_TOKEN, REDIS_PASSWORD, DB_PASSWORD]) expect(text).not.toContain(secret);
    // ... while the lines that matter are all there.
    const msgs = logs.lines().map((l) => l.msg);
    expect(msgs).toContain("identity-map listening");
    expect(msgs).toContain("publish batch");
    expect(msgs).toContain("binding change");
    expect(msgs).toContain("publish batch failed");
    expect(msgs).toContain("careless fields");
    expect(text).toContain("[redacted]");
    const audit = logs.lines().filter((l) => l.audit === true);
    expect(audit.length).toBeGreaterThan(0);
    for (const a of audit)
      expect(a).toMatchObject({
        actor: expect.any(String),
        kind: expect.any(String),
        key: expect.any(String),
        reason: expect.any(String),
      });
    expect(logs.lines().find((l) => l.msg === "publish batch")).toMatchObject({
      batch: 1,
      created: 1,
      updated: 0,
      unchanged: 0,
      rejected: 0,
      failed: 0,
    });
  });
});
