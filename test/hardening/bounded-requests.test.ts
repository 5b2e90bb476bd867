import { connect } from "node:net";
import type { FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";

const mac = (i: number) =>
  `02:00:00:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;

// Defects 2, 7 and 8 of issue 12 and the `__proto__` item: every request's work is bounded, and
// hostile bodies answer 400 naming the field, never 500 or a stalled service.
describe("every request is bounded", () => {
  let app: App;
  let rest: FastifyInstance;
  beforeEach(async () => {
    ({ app } = await testApp({ IDMAP_MAX_LOOKUP_KEYS: "8", IDMAP_MAX_BATCH_KEYS: "20", IDMAP_REQUEST_TIMEOUT: "1s" }));
    rest = await buildRestApp(app);
  });
  afterEach(async () => {
    await rest.close();
    await app.close();
  });

  const post = (url: string, payload: string | object) =>
    rest.inject({ method: "POST", url, headers: { "content-type": "application/json" }, payload });

  it("a lookup carries at most IDMAP_MAX_LOOKUP_KEYS keys (413, the field named)", async () => {
    const keys = (n: number) => Array.from({ length: n }, (_, i) => ({ kind: "mac", value: mac(i) }));
    expect((await post("/v1/canonical-devices/lookup", { identity_keys: keys(8) })).statusCode).toBe(200);
    const r = await post("/v1/canonical-devices/lookup", { identity_keys: keys(9) });
    expect(r.statusCode).toBe(413);
    expect(r.json().error).toMatchObject({ code: "batch_too_large", field: "identity_keys" });
  });

  it("a batch lookup carries at most IDMAP_MAX_BATCH_KEYS keys in total", async () => {
    const lookup = { identity_keys: Array.from({ length: 7 }, (_, i) => ({ kind: "mac", value: mac(i) })) };
    expect((await post("/v1/canonical-devices/batch-lookup", { lookups: [lookup, lookup] })).statusCode).toBe(200);
    const r = await post("/v1/canonical-devices/batch-lookup", { lookups: [lookup, lookup, lookup] });
    expect(r.statusCode).toBe(413);
    expect(r.json().error).toMatchObject({ code: "batch_too_large", field: "lookups[].identity_keys" });
  });

  it("duplicate keys count once, whatever their spelling, in the order first given", async () => {
    const { LookupService } = await import("../../src/app/lookup/lookup-service.js");
    const keys = LookupService.parseKeys({
      identityKeys: [
        { kind: "mac", value: "aa-bb-cc-dd-ee-01" },
        { kind: "ip", value: "10.0.0.1" },
        { kind: "mac", value: "AA:BB:CC:DD:EE:01" },
        { kind: "mac", value: "aabb.ccdd.ee01" },
      ],
      ipHint: "10.0.0.1",
    });
    expect(keys).toEqual([
      { kind: "mac", value: "AA:BB:CC:DD:EE:01" },
      { kind: "ip", value: "10.0.0.1" },
    ]);
  });

  it("JSON nested 5 000 deep anywhere answers 400 naming the field, not 500", async () => {
    const deep = `${"[".repeat(5_000)}${"]".repeat(5_000)}`;
    for (const [url, body] of [
      ["/v1/canonical-devices/lookup", `{"identity_keys":[],"extra":${deep}}`],
      ["/v1/device-updates", `{"updates":[{"device_id":"d-1","metadata":${deep}}]}`],
      ["/v1/device-updates/resolve", `{"updates":[${deep}]}`],
    ] as const) {
      const r = await post(url, body);
      expect(r.statusCode, url).toBe(400);
      expect(r.json().error.code).toBe("invalid_argument");
      expect(r.json().error.field).toMatch(/^(extra|updates)\[0\]/);
    }
  });

  it("`__proto__` is refused, naming the field, and changes nothing", async () => {
    const r = await post(
      "/v1/device-updates",
      '{"updates":[{"device_id":"proto-1","ip":"10.9.0.1","metadata":{"__proto__":{"polluted":"yes"}}}]}',
    );
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatchObject({ code: "invalid_argument", field: "updates[0].metadata.__proto__" });
    expect(await app.devices.getDevice("proto-1")).toBeNull();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("a trickled body is cut off at the request timeout", async () => {
    await rest.listen({ host: "127.0.0.1", port: 0 });
    const { port } = rest.server.address() as { port: number };
    const socket = connect(port, "127.0.0.1");
    const started = Date.now();
    const closed = new Promise<string>((resolve) => {
      let reply = "";
      socket.on("data", (d) => (reply += d.toString()));
      socket.on("close", () => resolve(reply));
      socket.on("error", () => {});
    });
    socket.write(
      "POST /v1/device-updates HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{",
    );
    const drip = setInterval(() => socket.writable && socket.write(" "), 100);
    const outcome = await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r("still open"), 6_000))]);
    clearInterval(drip);
    socket.destroy();
    expect(outcome).not.toBe("still open");
    expect(outcome.startsWith("HTTP/1.1 408")).toBe(true);
    expect(Date.now() - started).toBeLessThan(6_000);
  });

  it("a request that arrives while the service shuts down gets the error envelope", async () => {
    const closing = rest.close();
    const r = await rest.inject({ method: "GET", url: "/v1/canonical-devices/lookup?mac=aa-bb-cc-dd-ee-01" });
    await closing;
    expect(r.statusCode).toBe(503);
    expect(r.json().error.code).toBe("shutting_down");
  });
});
