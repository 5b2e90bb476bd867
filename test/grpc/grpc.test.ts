import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { startGrpcServer, type GrpcServer } from "../../src/adapters/grpc/grpc-server.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";
import { identityMapClient, statusOf, type IdentityMapClient } from "../support/grpc.js";

let app: App;
let kv: MemoryKv;
let server: GrpcServer;
let c: IdentityMapClient;

beforeAll(async () => {
  kv = new MemoryKv();
  ({ app } = await testApp(
    { IDMAP_MAX_BATCH: "5", IDMAP_GRPC_PORT: "0", IDMAP_HYDRATE_NAMESPACES: "some_other_map" },
    kv,
  ));
  server = await startGrpcServer(app);
  c = identityMapClient(`127.0.0.1:${server.port}`);
});
afterAll(async () => {
  c.close();
  await server.close();
  await app.close();
});

const laptop = {
  device_id: "default:10.0.0.5",
  ip: "10.0.0.5",
  partition: "default",
  mac: "aa:bb:cc:dd:ee:ff",
  hostname: "laptop-42",
  source: "armis",
  metadata: { armis_device_id: "A-1001" },
};

async function snapshot(): Promise<string> {
  const { entries } = await kv.list("");
  const rows = await app.devices.listDevices({ limit: 10_000 });
  return JSON.stringify({ kv: entries.map((e) => [e.key, e.revision]), rows: rows.map((r) => r.deviceId) });
}

describe("gRPC identitymap.v1.IdentityMapService over loopback", () => {
  it("binds an ephemeral port", () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.port).not.toBe(50051);
  });

  it("PublishDeviceUpdates keeps one laptop one device across a DHCP move", async () => {
    const first = await c.call("PublishDeviceUpdates", { updates: [laptop] });
    expect(first.results[0]).toMatchObject({
      device_id: "default:10.0.0.5",
      canonical_device_id: "default:10.0.0.5",
      outcome: "PUBLISH_OUTCOME_CREATED",
      matched_by: "IDENTITY_KIND_UNSPECIFIED",
    });
    const moved = await c.call("PublishDeviceUpdates", {
      updates: [
        { ...laptop, device_id: "default:10.0.0.9", ip: "10.0.0.9", timestamp_unix_millis: app.clock.nowMs() + 1 },
      ],
    });
    expect(moved.results[0]).toMatchObject({
      device_id: "default:10.0.0.9",
      canonical_device_id: "default:10.0.0.5",
      matched_by: "IDENTITY_KIND_ARMIS_ID",
      outcome: "PUBLISH_OUTCOME_UPDATED",
      tombstone: { device_id: "default:10.0.0.9", merged_into: "default:10.0.0.5" },
    });
    const again = await c.call("PublishDeviceUpdates", {
      updates: [
        {
          ...laptop,
          device_id: "default:10.0.0.9",
          ip: "10.0.0.9",
          timestamp: new Date(app.clock.nowMs() + 1).toISOString(),
        },
      ],
    });
    expect(again.results[0].outcome).toBe("PUBLISH_OUTCOME_UNCHANGED");
    const bad = await c.call("PublishDeviceUpdates", {
      updates: [{ device_id: "x-1", mac: "nonsense", metadata: { armis_device_id: "A-2" } }, { mac: "nonsense" }],
    });
    expect(bad.results[0]).toMatchObject({
      outcome: "PUBLISH_OUTCOME_CREATED",
      rejected_identifiers: [{ field: "mac", value: "nonsense", reason: "invalid_mac" }],
    });
    expect(bad.results[1]).toMatchObject({ outcome: "PUBLISH_OUTCOME_REJECTED", canonical_device_id: "" });
  });

  it("GetCanonicalDevice: KV hit with revision, normalized keys, a miss is found=false", async () => {
    const hit = await c.call("GetCanonicalDevice", {
      identity_keys: [{ kind: "IDENTITY_KIND_MAC", value: "AA-BB-CC-DD-EE-FF" }],
    });
    expect(hit).toMatchObject({
      found: true,
      record: { canonical_device_id: "default:10.0.0.5", partition: "default" },
      matched_key: { kind: "IDENTITY_KIND_MAC", value: "AA:BB:CC:DD:EE:FF" },
      hydrated: false,
    });
    expect(hit.revision).toBeGreaterThan(0);
    expect(["cache", "kv"]).toContain(hit.resolved_via);
    expect(hit.record.attributes).toContainEqual({ key: "hostname", value: "laptop-42" });

    const byHint = await c.call("GetCanonicalDevice", { identity_keys: [], ip_hint: "10.0.0.9" });
    expect(byHint).toMatchObject({ found: true, matched_key: { kind: "IDENTITY_KIND_IP", value: "10.0.0.9" } });

    const miss = await c.call("GetCanonicalDevice", {
      identity_keys: [{ kind: "IDENTITY_KIND_ARMIS_ID", value: "nope" }],
    });
    expect(miss).toMatchObject({ found: false, record: null, revision: 0, hydrated: false, resolved_via: "miss" });
  });

  it("GetCanonicalDevice falls back to the relational store and hydrates the KV", async () => {
    const now = app.clock.nowMs();
    await app.devices.upsertDevices([
      {
        deviceId: "legacy-7",
        canonicalDeviceId: "legacy-7",
        mergedInto: null,
        partition: "default",
        ip: "10.7.7.7",
        macs: [],
        armisId: "A-LEGACY",
        netboxIds: [],
        hostname: "old-box",
        source: "armis",
        firstSeenMs: now,
        lastSeenMs: now,
        metadata: {},
      },
    ]);
    const first = await c.call("GetCanonicalDevice", {
      identity_keys: [{ kind: "IDENTITY_KIND_ARMIS_ID", value: "A-LEGACY" }],
    });
    expect(first).toMatchObject({
      found: true,
      record: { canonical_device_id: "legacy-7" },
      revision: 0,
      hydrated: true,
      resolved_via: "db",
    });
    const second = await c.call("GetCanonicalDevice", {
      identity_keys: [{ kind: "IDENTITY_KIND_ARMIS_ID", value: "A-LEGACY" }],
    });
    expect(second).toMatchObject({ found: true, hydrated: false });
    expect(second.revision).toBeGreaterThan(0);
  });

  it("BatchGetCanonicalDevices answers in request order", async () => {
    const r = await c.call("BatchGetCanonicalDevices", {
      lookups: [
        { identity_keys: [{ kind: "IDENTITY_KIND_ARMIS_ID", value: "nope" }] },
        { identity_keys: [{ kind: "IDENTITY_KIND_ARMIS_ID", value: "A-1001" }] },
        { identity_keys: [], ip_hint: "10.0.0.9" },
      ],
    });
    expect(r.results.map((x: { found: boolean }) => x.found)).toEqual([false, true, true]);
    expect(r.results[1].record.canonical_device_id).toBe("default:10.0.0.5");
  });

  it("ResolveDeviceUpdates annotates without writing", async () => {
    const before = await snapshot();
    const r = await c.call("ResolveDeviceUpdates", {
      updates: [
        { ...laptop, device_id: "default:10.0.0.77", ip: "10.0.0.77" },
        { device_id: "new", metadata: { armis_device_id: "A-new" } },
      ],
    });
    expect(r.results[0]).toMatchObject({
      canonical_device_id: "default:10.0.0.5",
      canonical_partition: "default",
      matched_by: "IDENTITY_KIND_ARMIS_ID",
    });
    expect(r.results[0].canonical_revision).toBeGreaterThan(0);
    expect(r.results[1]).toMatchObject({
      canonical_device_id: "",
      canonical_revision: 0,
      matched_by: "IDENTITY_KIND_UNSPECIFIED",
    });
    expect(await snapshot()).toBe(before);
  });

  it("GetDeviceHistory pages newest first; an unknown device is NOT_FOUND", async () => {
    const all = await c.call("GetDeviceHistory", { device_id: "default:10.0.0.5", limit: 500 });
    expect(all.entries.length).toBeGreaterThan(3);
    const ids = all.entries.map((e: { id: number }) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(all.next).toBe(0);
    const p1 = await c.call("GetDeviceHistory", { device_id: "default:10.0.0.5", limit: 2 });
    const p2 = await c.call("GetDeviceHistory", { device_id: "default:10.0.0.5", limit: 2, before: p1.next });
    expect([...p1.entries, ...p2.entries].map((e: { id: number }) => e.id)).toEqual(ids.slice(0, 4));
    expect(p1.entries[0]).toMatchObject({
      actor: "anonymous",
      key: { kind: expect.stringMatching(/^IDENTITY_KIND_/) },
    });
    expect((await statusOf(c.call("GetDeviceHistory", { device_id: "never-seen" }))).code).toBe(grpc.status.NOT_FOUND);
  });
});

describe("gRPC: bad input is INVALID_ARGUMENT and changes nothing", () => {
  it("an unknown kind, empty keys, an invalid value, a bad history limit", async () => {
    const before = await snapshot();
    const unknown = await statusOf(c.call("GetCanonicalDevice", { identity_keys: [{ kind: 9, value: "x" }] }));
    expect(unknown).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      errorCode: "invalid_argument",
      field: "identity_keys[0].kind",
    });
    const unspecified = await statusOf(c.call("GetCanonicalDevice", { identity_keys: [{ kind: 0, value: "x" }] }));
    expect(unspecified.code).toBe(grpc.status.INVALID_ARGUMENT);
    const empty = await statusOf(c.call("GetCanonicalDevice", { identity_keys: [] }));
    expect(empty).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: "identity_keys" });
    const badMac = await statusOf(
      c.call("BatchGetCanonicalDevices", {
        lookups: [
          { identity_keys: [{ kind: 4, value: "aa:bb:cc:dd:ee:ff" }] },
          { identity_keys: [{ kind: 4, value: "zz" }] },
        ],
      }),
    );
    expect(badMac).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: "lookups[1].identity_keys[0].value" });
    const limit = await statusOf(c.call("GetDeviceHistory", { device_id: "default:10.0.0.5", limit: 501 }));
    expect(limit).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: "limit" });
    const noUpdates = await statusOf(c.call("PublishDeviceUpdates", { updates: [] }));
    expect(noUpdates).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: "updates" });
    expect(await snapshot()).toBe(before);
  });

  it("an oversized batch (over IDMAP_MAX_BATCH) on every batch RPC", async () => {
    const before = await snapshot();
    const six = Array.from({ length: 6 }, (_, i) => ({ ...laptop, device_id: `d${i}` }));
    for (const [method, req] of [
      ["PublishDeviceUpdates", { updates: six }],
      ["ResolveDeviceUpdates", { updates: six }],
      [
        "BatchGetCanonicalDevices",
        { lookups: six.map(() => ({ identity_keys: [{ kind: 4, value: "aa:bb:cc:dd:ee:ff" }] })) },
      ],
    ] as const) {
      const s = await statusOf(c.call(method, req));
      expect(s).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, errorCode: "batch_too_large" });
      expect(s.details).toContain("5");
    }
    expect(await snapshot()).toBe(before);
  });
});

/**
 * core.CoreService as the reference's clients speak it: the request is encoded by hand with field
 * numbers 1 (identity_keys), 2 (namespace), 3 (ip_hint) and the response read by field number, with no
 * help from the server's .proto files.
 */
describe("gRPC core.CoreService/GetCanonicalDevice, wire-compatible with the reference", () => {
  const METHOD = "/core.CoreService/GetCanonicalDevice";

  function encodeRequest(keys: [number, string][], namespace?: string, ipHint?: string): Buffer {
    const w = protobuf.Writer.create();
    for (const [kind, value] of keys) {
      w.uint32((1 << 3) | 2).fork();
      if (kind !== 0) w.uint32((1 << 3) | 0).int32(kind);
      w.uint32((2 << 3) | 2).string(value);
      w.ldelim();
    }
    if (namespace !== undefined) w.uint32((2 << 3) | 2).string(namespace);
    if (ipHint !== undefined) w.uint32((3 << 3) | 2).string(ipHint);
    return Buffer.from(w.finish());
  }

  interface Decoded {
    found: boolean;
    record?: { canonicalDeviceId: string; partition: string; metadataHash: string; updatedAt: number };
    matchedKey?: { kind: number; value: string };
    revision: number;
    hydrated: boolean;
  }

  function fields(bytes: Uint8Array, each: (field: number, r: protobuf.Reader, wire: number) => void): void {
    const r = protobuf.Reader.create(bytes);
    while (r.pos < r.len) {
      const tag = r.uint32();
      const before = r.pos;
      each(tag >>> 3, r, tag & 7);
      if (r.pos === before) r.skipType(tag & 7);
    }
  }

  function decodeResponse(bytes: Buffer): Decoded {
    const out: Decoded = { found: false, revision: 0, hydrated: false };
    fields(bytes, (f, r) => {
      if (f === 1) out.found = r.bool();
      else if (f === 2) {
        const rec = { canonicalDeviceId: "", partition: "", metadataHash: "", updatedAt: 0 };
        fields(r.bytes(), (g, s) => {
          if (g === 1) rec.canonicalDeviceId = s.string();
          else if (g === 2) rec.partition = s.string();
          else if (g === 3) rec.metadataHash = s.string();
          else if (g === 4) rec.updatedAt = Number(s.int64());
        });
        out.record = rec;
      } else if (f === 3) {
        const key = { kind: 0, value: "" };
        fields(r.bytes(), (g, s) => {
          if (g === 1) key.kind = s.int32();
          else if (g === 2) key.value = s.string();
        });
        out.matchedKey = key;
      } else if (f === 4) out.revision = Number(r.uint64());
      else if (f === 5) out.hydrated = r.bool();
    });
    return out;
  }

  const callCore = (req: Buffer, token?: string) =>
    new Promise<Decoded>((resolve, reject) => {
      const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
      const md = new grpc.Metadata();
      if (token) md.set("authorization", `Bearer ${token}`);
      client.makeUnaryRequest(
        METHOD,
        (b: Buffer) => b,
        (b: Buffer) => b,
        req,
        md,
        { deadline: Date.now() + 10_000 },
        (err, res) => {
          client.close();
          if (err) reject(err);
          else resolve(decodeResponse(res!));
        },
      );
    });

  it("finds a device by an armis-id key (kind 2) with record, matched key and revision", async () => {
    const r = await callCore(
      encodeRequest([
        [2, "nope"],
        [2, "A-1001"],
      ]),
    );
    expect(r.found).toBe(true);
    expect(r.record).toMatchObject({ canonicalDeviceId: "default:10.0.0.5", partition: "default" });
    expect(r.record!.metadataHash).toMatch(/^[0-9a-f]{64}$/);
    expect(r.record!.updatedAt).toBeGreaterThan(0);
    expect(r.matchedKey).toEqual({ kind: 2, value: "A-1001" });
    expect(r.revision).toBeGreaterThan(0);
    expect(r.hydrated).toBe(false);
  });

  it("ip_hint (field 3) alone is a lookup by IP (kind 5); namespace (field 2) selects another map", async () => {
    const byHint = await callCore(encodeRequest([], undefined, "10.0.0.9"));
    expect(byHint).toMatchObject({ found: true, matchedKey: { kind: 5, value: "10.0.0.9" } });
    // Another namespace has no binding: the relational store answers (it has no namespaces) and the
    // answer is written into that namespace's map, as the reference did, because the configuration
    // lists it (IDMAP_HYDRATE_NAMESPACES); an unlisted one is never written (test/hardening/read-only-lookups.test.ts).
    const otherNs = await callCore(encodeRequest([[4, "AA:BB:CC:DD:EE:FF"]], "some_other_map"));
    expect(otherNs).toMatchObject({ found: true, revision: 0, hydrated: true });
    expect(await kv.get("some_other_map/mac/AA=3ABB=3ACC=3ADD=3AEE=3AFF")).not.toBeNull();
    const sameNs = await callCore(encodeRequest([[4, "AA:BB:CC:DD:EE:FF"]], app.config.namespace));
    expect(sameNs.found).toBe(true);
    expect(sameNs.revision).toBeGreaterThan(0);
  });

  it("reports the relational fallback with revision 0 and hydrated=true, like the reference", async () => {
    const now = app.clock.nowMs();
    await app.devices.upsertDevices([
      {
        deviceId: "legacy-core",
        canonicalDeviceId: "legacy-core",
        mergedInto: null,
        partition: "default",
        ip: "",
        macs: [],
        armisId: "A-CORE",
        netboxIds: [],
        hostname: "",
        source: "armis",
        firstSeenMs: now,
        lastSeenMs: now,
        metadata: {},
      },
    ]);
    const r = await callCore(encodeRequest([[2, "A-CORE"]]));
    expect(r).toMatchObject({ found: true, revision: 0, hydrated: true, record: { canonicalDeviceId: "legacy-core" } });
  });

  it("a miss is found=false; keys of kind UNSPECIFIED or blank are dropped (a miss); nothing at all is INVALID_ARGUMENT", async () => {
    expect((await callCore(encodeRequest([[6, "default:10.99.0.1"]]))).found).toBe(false);
    expect(
      await callCore(
        encodeRequest([
          [0, "x"],
          [2, "  "],
        ]),
      ),
    ).toEqual({ found: false, revision: 0, hydrated: false });
    const none = await callCore(encodeRequest([])).catch((e: grpc.ServiceError) => e);
    expect((none as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    const unknown = await callCore(encodeRequest([[42, "x"]])).catch((e: grpc.ServiceError) => e);
    expect((unknown as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});
