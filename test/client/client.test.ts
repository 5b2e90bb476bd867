import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import {
  buildKeys,
  IdentityMapApiError,
  IdentityMapClient,
  keyPath,
  prioritizedKeys,
  type DeviceUpdate,
} from "../../src/client/index.js";
import { normalizeUpdate } from "../../src/domain/device-update.js";
import { testApp } from "../support/app.js";

let app: App;
let kv: MemoryKv;
let rest: FastifyInstance;
let client: IdentityMapClient;

beforeAll(async () => {
  kv = new MemoryKv();
  ({ app } = await testApp({}, kv));
  rest = await buildRestApp(app);
  const address = await rest.listen({ host: "127.0.0.1", port: 0 });
  client = new IdentityMapClient({ baseUrl: address });
});
afterAll(async () => {
  await rest.close();
  await app.close();
});

/** Every key with its revision: a read-only call must leave both alone. */
async function revisions(): Promise<string> {
  const { entries } = await kv.list("");
  return JSON.stringify(entries.map((e) => [e.key, e.revision]).sort());
}

const armisSighting = (ip: string, extra: Partial<DeviceUpdate> = {}): DeviceUpdate => ({
  device_id: `site-1:${ip}`,
  ip,
  partition: "site-1",
  mac: "00:1A:2B:3C:4D:5E",
  hostname: "printer-7",
  source: "armis",
  metadata: { armis_device_id: "ARM-77" },
  ...extra,
});
const netboxSighting = (ip: string): DeviceUpdate => ({
  device_id: `site-1:${ip}`,
  ip,
  partition: "site-1",
  source: "netbox",
  metadata: { integration_type: "NetBox", integration_id: "nb-1201", netbox_device_id: "1201" },
});

describe("the exported client: key derivation", () => {
  it("derives the keys the service derives, and orders them strongest first", () => {
    const u = armisSighting("10.1.0.5", { mac: "00-1a-2b-3c-4d-5e, 00:00:00:00:00:00" });
    expect(buildKeys(u)).toEqual(normalizeUpdate(u, { nowMs: 1 }).keys);
    expect(prioritizedKeys(u).map((k) => k.kind)).toEqual(["armis-id", "mac", "partition-ip", "ip", "device-id"]);
    expect(
      buildKeys(netboxSighting("10.1.0.9"))
        .filter((k) => k.kind === "netbox-id")
        .map((k) => k.value),
    ).toEqual(["nb-1201", "1201"]);
    expect(keyPath("device_canonical_map", { kind: "mac", value: "AA:BB:CC:DD:EE:FF" })).toBe(
      "device_canonical_map/mac/AA=3ABB=3ACC=3ADD=3AEE=3AFF",
    );
  });
});

describe("the exported client over REST", () => {
  it("publishes, looks up (POST, GET, batch) and reads a device", async () => {
    const [first] = await client.publish([armisSighting("10.1.0.5")]);
    expect(first).toMatchObject({ canonical_device_id: "site-1:10.1.0.5", outcome: "created" });
    const [moved] = await client.publish([armisSighting("10.1.0.6")]);
    expect(moved).toMatchObject({
      canonical_device_id: "site-1:10.1.0.5",
      tombstone: { device_id: "site-1:10.1.0.6", merged_into: "site-1:10.1.0.5" },
    });

    const byMac = await client.lookup({ identity_keys: [{ kind: "mac", value: "00-1a-2b-3c-4d-5e" }] });
    expect(byMac).toMatchObject({
      found: true,
      record: { canonical_device_id: "site-1:10.1.0.5", attributes: { hostname: "printer-7" } },
      matched_key: { kind: "mac" },
    });
    expect(await client.lookupBy({ ip: "10.1.0.6", partition: "site-1" })).toMatchObject({
      found: true,
      matched_key: { kind: "partition-ip", value: "site-1:10.1.0.6" },
    });
    expect(await client.lookupBy({ armis_id: "nobody" })).toBeNull();
    const batch = await client.batchLookup([
      { identity_keys: [{ kind: "IDENTITY_KIND_ARMIS_ID", value: "ARM-77" }] },
      { identity_keys: [], ip_hint: "10.9.9.9" },
    ]);
    expect(batch.map((r) => r.found)).toEqual([true, false]);

    const device = await client.getDevice("site-1:10.1.0.6");
    expect(device).toMatchObject({ device_id: "site-1:10.1.0.6", redirected_to: "site-1:10.1.0.5" });
    expect(device!.keys).toContainEqual({ kind: "armis-id", value: "ARM-77" });
    expect(await client.getDevice("never-seen")).toBeNull();
  });

  it("reports the service's errors with their code and field", async () => {
    // The generated types refuse an unknown kind; a caller without them (plain JS) can still send one.
    const kind = "serial-number" as "mac";
    const e = await client.lookup({ identity_keys: [{ kind, value: "x" }] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(IdentityMapApiError);
    expect(e).toMatchObject({ status: 400, code: "invalid_argument", field: "body.identity_keys[0].kind" });
  });
});

describe("sync alignment: resolve", () => {
  it("annotates Armis and NetBox updates the map knows, writes nothing, and gives the ids publish then gives", async () => {
    await client.publish([netboxSighting("10.1.0.20")]);
    const sync: DeviceUpdate[] = [
      // An Armis sync after a DHCP move: only the Armis id is known to the map.
      {
        device_id: "site-1:10.1.0.99",
        ip: "10.1.0.99",
        partition: "site-1",
        source: "armis",
        metadata: { armis_device_id: "ARM-77" },
      },
      // A NetBox sync: the integration type's case does not matter.
      {
        device_id: "site-1:10.1.0.21",
        ip: "10.1.0.21",
        partition: "site-1",
        source: "netbox",
        metadata: { integration_type: "netbox", integration_id: "nb-1201" },
      },
      // A device the map does not know: publish would create it.
      {
        device_id: "site-1:10.1.0.50",
        ip: "10.1.0.50",
        partition: "site-1",
        source: "armis",
        metadata: { armis_device_id: "ARM-NEW" },
      },
    ];
    const before = await revisions();
    const resolved = await client.resolve(sync);
    expect(await revisions()).toBe(before);

    expect(resolved.map((r) => [r.canonical_device_id, r.matched_by])).toEqual([
      ["site-1:10.1.0.5", "armis-id"],
      ["site-1:10.1.0.20", "netbox-id"],
      [null, null],
    ]);
    // Hash and revision are the device record's as the map holds it now.
    const device = await kv.get(keyPath(app.config.namespace, { kind: "device-id", value: "site-1:10.1.0.5" }));
    expect(resolved[0]).toMatchObject({ canonical_partition: "site-1", canonical_revision: device!.revision });
    const record = await client.lookup({ identity_keys: [{ kind: "device-id", value: "site-1:10.1.0.5" }] });
    expect(resolved[0]!.canonical_metadata_hash).toBe(record.record!.metadata_hash);

    const published = await client.publish(sync);
    expect(published.map((r) => r.canonical_device_id)).toEqual([
      resolved[0]!.canonical_device_id,
      resolved[1]!.canonical_device_id,
      "site-1:10.1.0.50",
    ]);
    expect(published[2]!.outcome).toBe("created");
  });

  it("in a batch, every update is resolved against the same snapshot of the map", async () => {
    const before = await revisions();
    const twice = await client.resolve([
      {
        device_id: "a:10.2.0.1",
        ip: "10.2.0.1",
        partition: "a",
        source: "armis",
        metadata: { armis_device_id: "ARM-B" },
      },
      {
        device_id: "a:10.2.0.2",
        ip: "10.2.0.2",
        partition: "a",
        source: "armis",
        metadata: { armis_device_id: "ARM-B" },
      },
    ]);
    // Nothing is applied between them: neither is known yet.
    expect(twice.map((r) => r.canonical_device_id)).toEqual([null, null]);
    expect(await revisions()).toBe(before);
  });
});
