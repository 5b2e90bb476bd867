import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";
import { parseExposition, sampleValue, seriesOf, type Sample } from "./exposition.js";

const M1 = "02:00:00:00:00:01";
const M2 = "02:00:00:00:00:02";
const M3 = "02:00:00:00:00:03";
const armis = (id: string) => ({ armis_device_id: id });

let app: App;
let rest: FastifyInstance;
let samples: Sample[];
const outcomes: string[] = [];
const statuses: number[] = [];

/**
 * One scripted session through the REST front-end; every counter below is the exact consequence of it.
 * Publishes: 5 created, 1 updated (a DHCP move), 2 unchanged (a repeat, and a refused rebind that
 * leaves the device as it was), 1 rejected. Lookups: 3 hits, 1 relational fallback, 1 miss, 1 invalid.
 */
beforeAll(async () => {
  const t = await testApp();
  app = t.app;
  rest = await buildRestApp(app);
  const publish = async (update: object) => {
    t.clock.advance(1_000); // sightings a second apart, as in life: equal-time claims never move a key
    const r = await rest.inject({ method: "POST", url: "/v1/device-updates", payload: { updates: [update] } });
    expect(r.statusCode).toBe(200);
    outcomes.push(r.json().results[0].outcome);
  };
  await publish({ device_id: "dev-Y", mac: M2, metadata: armis("A2") }); // created
  await publish({ device_id: "dev-Y", mac: M2, metadata: armis("A2") }); // unchanged: the cache answers, no KV call
  await publish({ device_id: "dev-X", mac: M1 }); // created
  await publish({ device_id: "dev-X", mac: `${M1},${M2}` }); // M2 was bound by an Armis assertion: a MAC alone cannot take it (weaker_assertion)
  await publish({ device_id: "dev-V", mac: M3, metadata: armis("A1") }); // created
  await publish({ device_id: "dev-Z", mac: M3, metadata: armis("A3") }); // the shared MAC may not merge A1 and A3: a veto; created
  await publish({ device_id: "p:10.0.0.5", ip: "10.0.0.5", partition: "p", metadata: armis("A9"), source: "armis" }); // created
  await publish({ device_id: "p:10.0.0.9", ip: "10.0.0.9", partition: "p", metadata: armis("A9"), source: "armis" }); // the DHCP move: updated
  await publish({ mac: "00:00:00:00:00:00" }); // nothing can identify it: rejected (zero_mac)

  // A device only the relational store knows (rows from before the map existed).
  await app.devices.upsertDevices([
    {
      deviceId: "legacy-1",
      canonicalDeviceId: "legacy-1",
      mergedInto: null,
      partition: "p",
      ip: "",
      macs: [],
      armisId: "A-legacy",
      netboxIds: [],
      hostname: "",
      source: "armis",
      firstSeenMs: 0,
      lastSeenMs: 0,
      metadata: {},
    },
  ]);
  const lookup = async (method: "GET" | "POST", url: string, payload?: object) => {
    const r = await rest.inject({ method, url, ...(payload ? { payload } : {}) });
    statuses.push(r.statusCode);
  };
  await lookup("GET", `/v1/canonical-devices/lookup?mac=${M2}`); // hit (cache)
  await lookup("POST", "/v1/canonical-devices/lookup", { identity_keys: [{ kind: "armis-id", value: "A9" }] }); // hit (cache)
  await lookup("GET", "/v1/canonical-devices/lookup?mac=02:00:00:00:00:99"); // miss: 404
  await lookup("POST", "/v1/canonical-devices/lookup", { identity_keys: [{ kind: "armis-id", value: "A-legacy" }] }); // fallback, hydrated
  await lookup("POST", "/v1/canonical-devices/lookup", { identity_keys: [{ kind: "armis-id", value: "A-legacy" }] }); // hit: hydration wrote it to the map
  await lookup("GET", "/v1/canonical-devices/lookup?mac=not-a-mac"); // invalid: 400

  const scrape = await rest.inject({ method: "GET", url: "/metrics" });
  expect(scrape.statusCode).toBe(200);
  expect(scrape.headers["content-type"]).toContain("text/plain");
  samples = parseExposition(scrape.body);
});
afterAll(async () => {
  await rest.close();
  await app.close();
});

describe("/metrics after a scripted session", () => {
  it("the session went as scripted", () => {
    expect(outcomes).toEqual([
      "created",
      "unchanged",
      "created",
      "unchanged",
      "created",
      "created",
      "created",
      "updated",
      "rejected",
    ]);
    expect(statuses).toEqual([200, 200, 404, 200, 200, 400]);
  });

  it("counts publish outcomes exactly", () => {
    expect(seriesOf(samples, "identitymap_kv_publish_total")).toEqual({
      "outcome=created": 5,
      "outcome=updated": 1,
      "outcome=unchanged": 2,
      "outcome=rejected": 1,
      "outcome=failed": 0,
    });
    expect(sampleValue(samples, "identitymap_publish_batch_size_count")).toBe(9);
    expect(sampleValue(samples, "identitymap_publish_batch_size_sum")).toBe(9);
    expect(sampleValue(samples, "identitymap_publish_latency_seconds_count")).toBe(9);
  });

  it("counts lookups as hit, fallback, miss and invalid; hit means the map answered", () => {
    expect(seriesOf(samples, "identitymap_lookup_total")).toEqual({
      "result=hit": 3,
      "result=fallback": 1,
      "result=miss": 1,
      "result=invalid": 1,
      "result=error": 0,
    });
    expect(
      sampleValue(samples, "identitymap_lookup_latency_seconds_count", { resolved_via: "cache", found: "true" }),
    ).toBe(3);
    expect(
      sampleValue(samples, "identitymap_lookup_latency_seconds_count", { resolved_via: "db", found: "true" }),
    ).toBe(1);
    expect(
      sampleValue(samples, "identitymap_lookup_latency_seconds_count", { resolved_via: "miss", found: "false" }),
    ).toBe(1);
    expect(
      sampleValue(samples, "identitymap_lookup_latency_seconds_count", { resolved_via: "invalid", found: "false" }),
    ).toBe(1);
  });

  it("counts the refused rebind, the veto, and nothing else as a conflict", () => {
    expect(seriesOf(samples, "identitymap_conflict_total")).toEqual({
      "reason=weaker_assertion": 1,
      "reason=out_of_order": 0,
      "reason=revision_mismatch": 0,
      "reason=retry_exhausted": 0,
    });
    expect(sampleValue(samples, "identitymap_merge_vetoes_total")).toBe(1);
    expect(sampleValue(samples, "identitymap_stale_links_total")).toBe(0);
  });

  it("counts writes avoided, rejected identifiers and binding changes", () => {
    expect(seriesOf(samples, "identitymap_writes_avoided_total")).toEqual({ "reason=cache": 2, "reason=hash": 0 });
    expect(sampleValue(samples, "identitymap_rejected_identifiers_total", { reason: "zero_mac" })).toBe(1);
    expect(
      samples.filter((s) => s.name === "identitymap_rejected_identifiers_total").reduce((n, s) => n + s.value, 0),
    ).toBe(1);
    expect(seriesOf(samples, "identitymap_binding_changes_total")).toEqual({
      "kind=device-id,reason=created": 5,
      "kind=armis-id,reason=created": 4,
      "kind=mac,reason=created": 3,
      "kind=mac,reason=moved": 1, // the veto: M3 follows the newer Armis device
      "kind=partition-ip,reason=created": 1,
      "kind=ip,reason=created": 1,
      "kind=partition-ip,reason=linked": 1, // the moved laptop's new address
      "kind=ip,reason=linked": 1,
      "kind=device-id,reason=merged": 1, // its address-derived new name redirects to it
      "kind=partition-ip,reason=moved": 1, // the old address of the moved laptop
      "kind=ip,reason=moved": 1,
      "kind=armis-id,reason=hydrated": 1,
    });
  });

  it("labels KV operations by op, backend and result; no write conflicted", () => {
    const ops = seriesOf(samples, "identitymap_kv_operations_total");
    expect(Object.keys(ops).every((k) => k.startsWith("backend=memory,") && k.endsWith(",result=ok"))).toBe(true);
    expect(ops["backend=memory,op=create,result=ok"]).toBe(18); // 17 for publishes, 1 hydration
    expect(
      sampleValue(samples, "identitymap_kv_operation_latency_seconds_count", { op: "create", backend: "memory" }),
    ).toBe(18);
  });

  it("reports bindings by kind and devices from the local cache", () => {
    expect(seriesOf(samples, "identitymap_bindings")).toEqual({
      "kind=armis-id,state=live": 5,
      "kind=armis-id,state=expired": 0,
      "kind=netbox-id,state=live": 0,
      "kind=netbox-id,state=expired": 0,
      "kind=mac,state=live": 3,
      "kind=mac,state=expired": 0,
      "kind=partition-ip,state=live": 1,
      "kind=partition-ip,state=expired": 0,
      "kind=ip,state=live": 1,
      "kind=ip,state=expired": 0,
      "kind=device-id,state=live": 6, // five devices and the moved laptop's redirect
      "kind=device-id,state=expired": 0,
    });
    expect(sampleValue(samples, "identitymap_devices")).toBe(5);
    expect(sampleValue(samples, "identitymap_binding_cache_synced")).toBe(1);
  });

  it("exports the default process metrics", () => {
    expect(sampleValue(samples, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(samples.some((s) => s.name === "nodejs_eventloop_lag_seconds")).toBe(true);
  });

  it("keeps labels bounded: no device ids, keys or addresses", () => {
    const values = samples.filter((s) => s.name.startsWith("identitymap_")).flatMap((s) => Object.values(s.labels));
    for (const v of values) expect(v).not.toMatch(/dev-|A-legacy|A\d|10\.0\.0\.|02:00|p:/);
    const allowed = new Set([
      "outcome",
      "reason",
      "result",
      "resolved_via",
      "found",
      "op",
      "backend",
      "kind",
      "action",
      "state",
      "le",
      "transport",
      "code",
    ]);
    for (const s of samples.filter((x) => x.name.startsWith("identitymap_")))
      for (const l of Object.keys(s.labels)) expect(allowed).toContain(l);
  });
});
