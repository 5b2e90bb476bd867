import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { followChanges } from "../../src/client/index.js";
import { testApp } from "../support/app.js";
import { until } from "../support/servers.js";

let app: App;
let rest: FastifyInstance;
let url: string;

beforeAll(async () => {
  ({ app } = await testApp({ IDMAP_REQUEST_TIMEOUT: "1s", IDMAP_CHANGES_HEARTBEAT: "300ms" }, new MemoryKv()));
  rest = await buildRestApp(app);
  url = await rest.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await rest.close();
  await app.close();
});

const metric = async (name: string, labels = "") => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `) || l.startsWith(`${name}${labels}{`));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
};

describe("GET /v1/snapshot and /v1/changes", () => {
  it("the snapshot is NDJSON: one line per live binding, then the end line; its revision also in the header", async () => {
    await app.publish.publish(
      [
        { device_id: "snap-1", mac: "02:00:00:5a:00:01", source: "agent" },
        { device_id: "snap-2", mac: "02:00:00:5a:00:02", source: "agent" },
      ],
      "test",
    );
    const res = await fetch(`${url}/v1/snapshot`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/application\/x-ndjson/);
    const lines = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const end = lines.at(-1);
    expect(end).toEqual({ end: true, revision: Number(res.headers.get("x-identitymap-revision")), count: 4 });
    expect(lines.slice(0, -1).map((l) => `${l.key.kind}/${l.key.value}`)).toEqual([
      "device-id/snap-1",
      "device-id/snap-2",
      "mac/02:00:00:5A:00:01",
      "mac/02:00:00:5A:00:02",
    ]);
    expect(lines[2]).toMatchObject({
      canonical_device_id: "snap-1",
      record: { canonical_device_id: "snap-1", provisional: false, expires_at_unix_millis: 0 },
    });
  });

  it("refuses a bad since or Last-Event-ID naming it, and changes nothing", async () => {
    const bad = await fetch(`${url}/v1/changes?since=yesterday`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { field: string } }).error.field).toMatch(/since/);
    const header = await fetch(`${url}/v1/changes`, { headers: { "last-event-id": "-3" } });
    expect(header.status).toBe(400);
    expect(((await header.json()) as { error: { field: string } }).error.field).toBe("last-event-id");
  });

  it("a stream outlives IDMAP_REQUEST_TIMEOUT, hears heartbeats, and is counted in the metrics", async () => {
    const abort = new AbortController();
    const items: string[] = [];
    const since = await app.changes.head();
    const reading = (async () => {
      try {
        for await (const item of followChanges({ baseUrl: url, signal: abort.signal }, since))
          items.push(item.type === "change" ? `change ${item.change.key.value}` : "heartbeat");
      } catch (e) {
        if (!abort.signal.aborted) throw e;
      }
    })();
    await until("connected", () => items.length > 0, 5_000);
    expect(await metric("identitymap_change_followers", '{transport="rest"}')).toBe(1);
    const sentBefore = (await metric("identitymap_change_events_sent_total", '{transport="rest"}')) ?? 0;
    await new Promise((r) => setTimeout(r, 1_500));
    await app.publish.publish([{ device_id: "late-1", mac: "02:00:00:5a:00:09", source: "agent" }], "test");
    await until("the change after the request timeout", () => items.includes("change late-1"), 5_000);
    expect(items.filter((i) => i === "heartbeat").length).toBeGreaterThanOrEqual(3);
    expect(await metric("identitymap_change_events_sent_total", '{transport="rest"}')).toBe(sentBefore + 2);
    expect(await metric("identitymap_change_follower_lag_revisions")).toBe(0);
    abort.abort();
    await reading;
    await until(
      "the follower to be gone",
      async () => (await metric("identitymap_change_followers", '{transport="rest"}')) === 0,
      5_000,
    );
  });
});
