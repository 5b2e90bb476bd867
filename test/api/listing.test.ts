import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";

let app: App;
let rest: FastifyInstance;

beforeAll(async () => {
  ({ app } = await testApp());
  rest = await buildRestApp(app);
  const updates = [
    ...Array.from({ length: 5 }, (_, i) => ({
      device_id: `lab:10.2.0.${i + 1}`,
      ip: `10.2.0.${i + 1}`,
      partition: "lab",
      mac: `02:00:00:00:00:0${i + 1}`,
      hostname: i < 2 ? "printer" : `host-${i}`,
      source: i < 3 ? "armis" : "agent",
    })),
    { ip: "10.2.9.9", partition: "lab", source: "sweep" },
    { device_id: "other:10.3.0.1", ip: "10.3.0.1", partition: "other", mac: "02:00:00:00:01:01", source: "armis" },
  ];
  const r = await rest.inject({ method: "POST", url: "/v1/device-updates", payload: { updates } });
  expect(r.statusCode).toBe(200);
});
afterAll(async () => {
  await rest.close();
  await app.close();
});

const get = (url: string) => rest.inject({ method: "GET", url });

async function listAll(query: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 20; pages++) {
    const r = await get(`/v1/canonical-devices?${query}&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.devices.length).toBeLessThanOrEqual(2);
    ids.push(...body.devices.map((d: { device_id: string }) => d.device_id));
    if (body.next_cursor === undefined) return ids;
    cursor = body.next_cursor;
  }
  throw new Error("the listing never ended");
}

describe("GET /v1/canonical-devices", () => {
  it("pages through every device of a partition in id order, each with its keys", async () => {
    const ids = await listAll("partition=lab");
    expect(ids).toEqual([...Array.from({ length: 5 }, (_, i) => `lab:10.2.0.${i + 1}`), "lab:10.2.9.9"]);
    const first = (await get("/v1/canonical-devices?partition=lab&limit=1")).json();
    expect(first.devices[0]).toMatchObject({
      device_id: "lab:10.2.0.1",
      partition: "lab",
      hostname: "printer",
      source: "armis",
      provisional: false,
      keys: [
        { kind: "device-id", value: "lab:10.2.0.1" },
        { kind: "mac", value: "02:00:00:00:00:01" },
        { kind: "partition-ip", value: "lab:10.2.0.1" },
        { kind: "ip", value: "10.2.0.1" },
      ],
    });
  });

  it("filters by source, hostname, provisional and update time", async () => {
    expect(await listAll("partition=lab&source=agent")).toEqual(["lab:10.2.0.4", "lab:10.2.0.5"]);
    expect(await listAll("hostname=printer")).toEqual(["lab:10.2.0.1", "lab:10.2.0.2"]);
    expect(await listAll("provisional=true")).toEqual(["lab:10.2.9.9"]);
    expect(await listAll("partition=other&provisional=false")).toEqual(["other:10.3.0.1"]);
    expect(await listAll("partition=lab&updated_since=2100-01-01T00:00:00Z")).toEqual([]);
  });

  it("names the bad parameter", async () => {
    for (const [query, field] of [
      ["limit=0", "querystring.limit"],
      ["limit=ten", "querystring.limit"],
      ["provisional=maybe", "querystring.provisional"],
      ["updated_since=yesterday", "querystring.updated_since"],
      ["cursor=%21%21", "cursor"],
    ] as const) {
      const r = await get(`/v1/canonical-devices?${query}`);
      expect(r.statusCode, query).toBe(400);
      expect(r.json().error, query).toMatchObject({ code: "invalid_argument", field });
    }
  });
});

describe("the error envelope everywhere", () => {
  it("answers an unknown route with a 404 envelope", async () => {
    const r = await get("/v2/nothing-here");
    expect(r.statusCode).toBe(404);
    expect(r.json().error.code).toBe("not_found");
  });

  it("answers a non-JSON body with 415", async () => {
    const r = await rest.inject({
      method: "POST",
      url: "/v1/device-updates",
      headers: { "content-type": "text/plain" },
      payload: "ip=10.0.0.1",
    });
    expect(r.statusCode).toBe(415);
    expect(r.json().error).toMatchObject({ code: "unsupported_media_type", field: "content-type" });
  });
});

describe("a 401", () => {
  it("names the Bearer scheme", async () => {
    const { app: guarded } = await testApp({ IDMAP_AUTH_TOKENS: "s3cret-token-for-tests:reader" });
    const g = await buildRestApp(guarded, {
      authorize: (req, need) => guarded.authenticator.authorize({ authorization: req.headers.authorization }, need),
    });
    try {
      const r = await g.inject({ method: "GET", url: "/v1/canonical-devices" });
      expect(r.statusCode).toBe(401);
      expect(r.headers["www-authenticate"]).toMatch(/^Bearer\b/);
      expect(r.json().error.code).toBe("unauthenticated");
      const ok = await g.inject({
        method: "GET",
        url: "/v1/canonical-devices",
        headers: { authorization: "Bearer s3cret-token-for-tests" },
      });
      expect(ok.statusCode).toBe(200);
    } finally {
      await g.close();
      await guarded.close();
    }
  });
});
