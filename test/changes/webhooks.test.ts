import { createServer, type IncomingMessage, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import type { App } from "../../src/app/container.js";
import { signWebhook, WebhookDispatcher } from "../../src/app/changes/webhooks.js";
import { loadConfig } from "../../src/app/config.js";
import { configSecrets, silentLogger } from "../../src/app/logger.js";
import { type ManualClock, testApp } from "../support/app.js";
import { dockedLaptop as laptop } from "../support/docked-laptop.js";
import { until } from "../support/servers.js";

const SECRET = "webhook-secret-0123456789";

interface Received {
  readonly headers: IncomingMessage["headers"];
  readonly body: string;
  readonly json: { type: string; revision: number; [k: string]: unknown };
}

/** A receiver that refuses (500), then drops a connection, then accepts: the endpoint that fails and recovers. */
function receiver(failFirst: number) {
  const accepted: Received[] = [];
  let calls = 0;
  let failing = failFirst;
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      calls++;
      if (failing > 0) {
        failing--;
        if (failing === 0) {
          req.socket.destroy();
          return;
        }
        res.writeHead(500).end("down");
        return;
      }
      accepted.push({ headers: req.headers, body, json: JSON.parse(body) });
      res.writeHead(204).end();
    });
  });
  return {
    accepted,
    get calls() {
      return calls;
    },
    fail(n: number) {
      failing = n;
    },
    async listen(): Promise<string> {
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      const addr = server.address();
      return `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/hook`;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let app: App;
let clock: ManualClock;
const kv = new MemoryKv();

beforeAll(async () => {
  ({ app, clock } = await testApp({}, kv));
});
afterAll(async () => {
  await app.close();
});

const dispatcher = (url: string) =>
  new WebhookDispatcher(app.changes, app.devices, silentLogger, {
    urls: [url],
    secret: SECRET,
    retryInitialMs: 20,
    retryMaxMs: 200,
  });

describe("webhooks", () => {
  it("posts merges, take-overs and quarantines, signed, retried until a failing receiver recovers, at least once across a restart", async () => {
    const hook = receiver(4);
    const url = await hook.listen();
    // A sweep's provisional device exists before the dispatcher starts: it learns it from the snapshot.
    await app.publish.publish([{ ip: "10.1.0.9", partition: "p", source: "sweep" }], "test");
    let d = dispatcher(url);
    await d.start();

    const t = clock.now - 3 * 3_600_000;
    await app.publish.publish(
      [
        {
          device_id: "p:10.0.0.5",
          ip: "10.0.0.5",
          partition: "p",
          metadata: { armis_device_id: "A1" },
          source: "armis",
        },
        {
          device_id: "p:10.0.0.9",
          ip: "10.0.0.9",
          partition: "p",
          metadata: { armis_device_id: "A1" },
          source: "armis",
        },
      ],
      "test",
    );
    // Stopped while the receiver still fails: what it had not delivered is sent by the next dispatcher.
    await until("a failed attempt", () => hook.calls >= 2, 5_000);
    await d.stop();
    expect(hook.accepted).toHaveLength(0);
    d = dispatcher(url);
    await d.start();

    const dock = "02:00:00:00:0D:0C";
    for (const u of [
      {
        device_id: "dev-L",
        ip: "10.1.0.9",
        partition: "p",
        mac: "02:00:00:00:00:02",
        metadata: { armis_device_id: "A3" },
        source: "armis",
      },
      laptop("lap-A", "A7", "10.0.0.21", `02:00:00:00:00:0A,${dock}`, t),
      laptop("lap-B", "A8", "10.0.0.22", dock, t + 3_600_000),
      laptop("lap-A", "A7", "10.0.0.21", `02:00:00:00:00:0A,${dock}`, t + 2 * 3_600_000),
    ])
      await app.publish.publish([u], "test");

    const types = () => hook.accepted.map((r) => r.json.type);
    await until("every event to arrive", () => types().includes("quarantine"), 10_000);
    await until("the queue to drain", () => Object.values(d.pending()).every((n) => n === 0), 5_000);
    await d.stop();

    const merges = hook.accepted.filter((r) => r.json.type === "merge").map((r) => r.json.tombstone);
    expect(merges).toContainEqual({ device_id: "p:10.0.0.9", merged_into: "p:10.0.0.5" });
    expect(hook.accepted.find((r) => r.json.type === "take_over")?.json).toMatchObject({
      device_id: "p:10.1.0.9",
      attributes: { armis_device_id: "A3" },
    });
    expect(hook.accepted.find((r) => r.json.type === "quarantine")?.json).toMatchObject({
      key: { kind: "mac", value: dock },
      candidates: expect.arrayContaining(["lap-A", "lap-B"]),
    });
    for (const r of hook.accepted) {
      expect(r.headers["idempotency-key"]).toBe(String(r.json.revision));
      expect(r.headers["x-identitymap-event"]).toBe(r.json.type);
      const ts = String(r.headers["x-identitymap-timestamp"]);
      expect(r.headers["x-identitymap-signature"]).toBe(signWebhook(SECRET, ts, r.body));
      expect(r.headers["x-identitymap-signature"]).not.toBe(signWebhook("another-secret-012345", ts, r.body));
    }
    // In revision order; a repeat (at least once) only ever repeats a revision already seen.
    const revisions = hook.accepted.map((r) => r.json.revision);
    const distinct = [...new Set(revisions)];
    expect(distinct).toEqual([...distinct].sort((a, b) => a - b));
    expect(hook.calls).toBeGreaterThan(hook.accepted.length);
    await hook.close();
  });

  it("nothing is posted for changes that are not merges, take-overs or quarantines", async () => {
    const hook = receiver(0);
    const url = await hook.listen();
    const d = dispatcher(url);
    await d.start();
    await app.publish.publish([{ device_id: "plain-1", mac: "02:00:00:00:77:01", source: "agent" }], "test");
    await new Promise((r) => setTimeout(r, 300));
    await d.stop();
    expect(hook.accepted).toEqual([]);
    await hook.close();
  });

  it("the signing secret is one of the values scrubbed from every log line", () => {
    const config = loadConfig({ IDMAP_WEBHOOK_URLS: "http://127.0.0.1:9/hook", IDMAP_WEBHOOK_SECRET: SECRET });
    expect(configSecrets(config)).toContain(SECRET);
  });
});
