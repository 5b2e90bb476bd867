import type { FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import { Authenticator } from "../../src/app/auth.js";
import type { App } from "../../src/app/container.js";
import type { DeviceRow } from "../../src/ports/index.js";
import { testApp } from "../support/app.js";

const READER = "reader-token-a81f44c9";
const WRITER = "writer-token-5c0e2b7d";

/** A device only the relational store knows (as after a backfill, or a KV that lost its data). */
const legacy = (now: number): DeviceRow => ({
  deviceId: "legacy-1",
  canonicalDeviceId: "legacy-1",
  mergedInto: null,
  partition: "p",
  ip: "10.5.0.9",
  macs: ["AA:BB:CC:00:00:09"],
  armisId: "A-legacy",
  netboxIds: [],
  hostname: "",
  source: "armis",
  firstSeenMs: now,
  lastSeenMs: now,
  metadata: {},
});

// Defect 1 of issue 12: a lookup that missed the map and hit the relational store wrote the answer
// back into whatever namespace the request named, for any caller.
describe("a lookup never writes for a reader, nor outside the configured namespaces", () => {
  let app: App;
  let kv: MemoryKv;
  let rest: FastifyInstance;
  beforeEach(async () => {
    kv = new MemoryKv();
    ({ app } = await testApp(
      { IDMAP_AUTH_TOKENS: `${READER}:reader,${WRITER}:writer`, IDMAP_HYDRATE_NAMESPACES: "listed_map" },
      kv,
    ));
    const auth = Authenticator.fromConfig(app.config);
    rest = await buildRestApp(app, {
      authorize: (req, need) => auth.authorize({ authorization: req.headers.authorization }, need),
    });
    await app.devices.upsertDevices([legacy(app.clock.nowMs())]);
  });
  afterEach(async () => {
    await rest.close();
    await app.close();
  });

  const keysIn = async (namespace: string) => (await kv.list(`${namespace}/`)).entries.length;
  const lookup = (token: string, body: object, path = "/v1/canonical-devices/lookup") =>
    rest.inject({ method: "POST", url: path, headers: { authorization: `Bearer ${token}` }, payload: body });
  const byArmis = { identity_keys: [{ kind: "armis-id", value: "A-legacy" }] };

  it("a reader's lookup answers from the relational store and writes nothing", async () => {
    const r = await lookup(READER, byArmis);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ found: true, hydrated: false, revision: 0 });
    const batch = await lookup(READER, { lookups: [byArmis, byArmis] }, "/v1/canonical-devices/batch-lookup");
    expect(batch.json().results.map((x: { hydrated: boolean }) => x.hydrated)).toEqual([false, false]);
    expect(await keysIn(app.config.namespace)).toBe(0);
  });

  it("no caller writes into a namespace the configuration does not list", async () => {
    for (let i = 1; i <= 3; i++) {
      for (const token of [READER, WRITER]) {
        const r = await lookup(token, { ...byArmis, namespace: `evil${i}` });
        expect(r.json()).toMatchObject({ found: true, hydrated: false });
      }
      const batch = await lookup(
        WRITER,
        { lookups: [byArmis], namespace: `evil${i}` },
        "/v1/canonical-devices/batch-lookup",
      );
      expect(batch.json().results[0]).toMatchObject({ found: true, hydrated: false });
      expect(await keysIn(`evil${i}`)).toBe(0);
    }
  });

  it("a writer's lookup still hydrates the configured namespace and a listed one", async () => {
    expect((await lookup(WRITER, byArmis)).json()).toMatchObject({ found: true, hydrated: true });
    expect(await keysIn(app.config.namespace)).toBe(1);
    expect((await lookup(WRITER, { ...byArmis, namespace: "listed_map" })).json()).toMatchObject({ hydrated: true });
    expect(await keysIn("listed_map")).toBe(1);
  });
});
