import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";

let app: App;
let kv: MemoryKv;
let rest: FastifyInstance;

beforeAll(async () => {
  kv = new MemoryKv();
  ({ app } = await testApp({ IDMAP_MAX_BATCH: "5" }, kv));
  rest = await buildRestApp(app);
});
afterAll(async () => {
  await rest.close();
  await app.close();
});

const post = (url: string, payload: unknown) => rest.inject({ method: "POST", url, payload: payload as object });
const laptop = {
  device_id: "default:10.0.0.5",
  ip: "10.0.0.5",
  partition: "default",
  mac: "aa:bb:cc:dd:ee:ff",
  hostname: "laptop-42",
  source: "armis",
  metadata: { armis_device_id: "A-1001" },
};

/** Everything the stores hold, to prove a bad request changed nothing. */
async function snapshot(): Promise<string> {
  const { entries } = await kv.list("");
  const rows = await app.devices.listDevices({ limit: 10_000 });
  return JSON.stringify({ kv: entries.map((e) => [e.key, e.revision]), rows: rows.map((r) => r.deviceId) });
}

describe("REST: publish, lookups, devices", () => {
  it("keeps one laptop one device across a DHCP move, with a tombstone for the second id", async () => {
    const first = await post("/v1/device-updates", { updates: [laptop] });
    expect(first.statusCode).toBe(200);
    expect(first.json().results[0]).toMatchObject({
      device_id: "default:10.0.0.5",
      canonical_device_id: "default:10.0.0.5",
      outcome: "created",
    });

    const moved = await post("/v1/device-updates", {
      updates: [{ ...laptop, device_id: "default:10.0.0.9", ip: "10.0.0.9" }],
    });
    expect(moved.json().results[0]).toEqual({
      device_id: "default:10.0.0.9",
      canonical_device_id: "default:10.0.0.5",
      matched_by: "armis-id",
      outcome: "updated",
      tombstone: { device_id: "default:10.0.0.9", merged_into: "default:10.0.0.5" },
    });

    const byIp = await rest.inject({
      method: "GET",
      url: "/v1/canonical-devices/lookup?ip=10.0.0.9&partition=default",
    });
    expect(byIp.statusCode).toBe(200);
    expect(byIp.json()).toMatchObject({
      found: true,
      record: { canonical_device_id: "default:10.0.0.5" },
      matched_key: { kind: "partition-ip", value: "default:10.0.0.9" },
    });
    const byMac = await post("/v1/canonical-devices/lookup", {
      identity_keys: [{ kind: "mac", value: "AA-BB-CC-DD-EE-FF" }],
    });
    expect(byMac.json()).toMatchObject({
      found: true,
      record: { canonical_device_id: "default:10.0.0.5" },
      hydrated: false,
    });
    expect(byMac.json().revision).toBeGreaterThan(0);

    const device = await rest.inject({ method: "GET", url: "/v1/canonical-devices/default:10.0.0.9" });
    expect(device.statusCode).toBe(200);
    expect(device.json().redirected_to).toBe("default:10.0.0.5");
    expect(device.json().keys).toContainEqual({ kind: "armis-id", value: "A-1001" });
    expect(device.json().keys).toContainEqual({ kind: "partition-ip", value: "default:10.0.0.9" });
  });

  it("batch lookup answers in request order; a miss is found=false; GET misses are 404", async () => {
    const r = await post("/v1/canonical-devices/batch-lookup", {
      lookups: [
        { identity_keys: [{ kind: "armis-id", value: "nope" }] },
        { identity_keys: [{ kind: "IDENTITY_KIND_ARMIS_ID", value: "A-1001" }] },
        { identity_keys: [], ip_hint: "10.0.0.9" },
      ],
    });
    expect(r.statusCode).toBe(200);
    expect(r.json().results.map((x: { found: boolean }) => x.found)).toEqual([false, true, true]);
    expect(
      (await rest.inject({ method: "GET", url: "/v1/canonical-devices/lookup?mac=02:00:00:00:00:99" })).statusCode,
    ).toBe(404);
    expect((await rest.inject({ method: "GET", url: "/v1/canonical-devices/unknown-device" })).statusCode).toBe(404);
  });

  it("resolve annotates without writing", async () => {
    const before = await snapshot();
    const r = await post("/v1/device-updates/resolve", {
      updates: [
        { ...laptop, device_id: "default:10.0.0.77", ip: "10.0.0.77" },
        { device_id: "new", metadata: { armis_device_id: "A-new" } },
      ],
    });
    expect(r.statusCode).toBe(200);
    expect(r.json().results[0]).toMatchObject({
      canonical_device_id: "default:10.0.0.5",
      canonical_partition: "default",
      matched_by: "armis-id",
    });
    expect(r.json().results[0].canonical_revision).toBeGreaterThan(0);
    expect(r.json().results[1]).toMatchObject({ canonical_device_id: null, canonical_revision: null });
    expect(await snapshot()).toBe(before);
  });

  it("health, readiness, metrics and the OpenAPI document", async () => {
    expect((await rest.inject({ url: "/healthz" })).json()).toEqual({ status: "ok" });
    expect((await rest.inject({ url: "/readyz" })).json()).toMatchObject({ status: "ready", kv: "ok", db: "ok" });
    const m = await rest.inject({ url: "/metrics" });
    expect(m.body).toContain("identitymap_kv_publish_total");
    const doc = (await rest.inject({ url: "/openapi.json" })).json();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/v1/device-updates",
        "/v1/canonical-devices/lookup",
        "/v1/canonical-devices/batch-lookup",
        "/v1/canonical-devices/{device_id}",
      ]),
    );
    expect((await rest.inject({ url: "/docs/" })).statusCode).toBe(200);
  });
});

describe("REST: bad input gets a clear error and changes nothing", () => {
  let before: string;
  beforeEach(async () => {
    before = await snapshot();
  });
  const unchanged = async () => expect(await snapshot()).toBe(before);

  it("malformed JSON", async () => {
    const r = await rest.inject({
      method: "POST",
      url: "/v1/device-updates",
      headers: { "content-type": "application/json" },
      payload: '{"updates": [',
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatchObject({ code: "invalid_argument", field: "body" });
    await unchanged();
  });

  it("wrong types name the field", async () => {
    const r = await post("/v1/device-updates", { updates: [laptop, { device_id: "x", ip: 12345 }] });
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatchObject({ code: "invalid_argument", field: "body.updates[1].ip" });
    const m = await post("/v1/device-updates", { updates: [{ device_id: "x", metadata: { armis_device_id: 7 } }] });
    expect(m.statusCode).toBe(400);
    expect(m.json().error.field).toBe("body.updates[0].metadata.armis_device_id");
    await unchanged();
  });

  it("an empty batch, and a body without updates", async () => {
    const r = await post("/v1/device-updates", { updates: [] });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.field).toBe("body.updates");
    const m = await post("/v1/device-updates", {});
    expect(m.statusCode).toBe(400);
    expect(m.json().error.field).toBe("body.updates");
    await unchanged();
  });

  it("an oversized batch is 413 with the limit in the message", async () => {
    const r = await post("/v1/device-updates", {
      updates: Array.from({ length: 6 }, (_, i) => ({ ...laptop, device_id: `d${i}` })),
    });
    expect(r.statusCode).toBe(413);
    expect(r.json().error.code).toBe("batch_too_large");
    expect(r.json().error.field).toBe("updates");
    const b = await post("/v1/canonical-devices/batch-lookup", {
      lookups: Array.from({ length: 6 }, () => ({ identity_keys: [{ kind: "mac", value: "aa:bb:cc:dd:ee:ff" }] })),
    });
    expect(b.statusCode).toBe(413);
    await unchanged();
  });

  it("an unknown kind in a lookup, and a GET lookup with no parameters", async () => {
    const r = await post("/v1/canonical-devices/lookup", { identity_keys: [{ kind: "serial-number", value: "x" }] });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.field).toBe("body.identity_keys[0].kind");
    const b = await post("/v1/canonical-devices/batch-lookup", {
      lookups: [
        { identity_keys: [{ kind: "mac", value: "aa:bb:cc:dd:ee:ff" }] },
        { identity_keys: [{ kind: "mac", value: "zz" }] },
      ],
    });
    expect(b.statusCode).toBe(400);
    expect(b.json().error.field).toBe("lookups[1].identity_keys[0].value");
    const g = await rest.inject({ url: "/v1/canonical-devices/lookup" });
    expect(g.statusCode).toBe(400);
    expect(g.json().error.code).toBe("invalid_argument");
    const empty = await post("/v1/canonical-devices/lookup", { identity_keys: [] });
    expect(empty.statusCode).toBe(400);
    await unchanged();
  });

  it("an invalid MAC or IP in one update: its result says which field and why, the others succeed", async () => {
    const r = await post("/v1/device-updates", {
      updates: [
        { device_id: "dev-bad-ip", ip: "10.0.0.300", metadata: { armis_device_id: "A-77" } },
        { device_id: "dev-bad-mac", mac: "00:00:5e:00:01:07, nonsense", metadata: { armis_device_id: "A-78" } },
        { device_id: "dev-good", ip: "10.9.9.9", metadata: { armis_device_id: "A-79" } },
        { mac: "nonsense" },
      ],
    });
    expect(r.statusCode).toBe(200);
    const [a, b, c, d] = r.json().results;
    expect(a).toMatchObject({
      outcome: "created",
      rejected_identifiers: [{ field: "ip", value: "10.0.0.300", reason: "invalid_ip" }],
    });
    expect(b.rejected_identifiers).toEqual([
      { field: "mac", value: "00:00:5e:00:01:07", reason: "vrrp_mac" },
      { field: "mac", value: "nonsense", reason: "invalid_mac" },
    ]);
    expect(c.outcome).toBe("created");
    expect(d).toMatchObject({ outcome: "rejected", canonical_device_id: null });
    const m = await rest.inject({ url: "/metrics" });
    expect(m.body).toMatch(/identitymap_rejected_identifiers_total\{reason="vrrp_mac"\} 1/);
  });
});
