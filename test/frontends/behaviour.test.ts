import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGrpcServer, type GrpcServer } from "../../src/adapters/grpc/grpc-server.js";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";
import { identityMapClient, statusOf, type IdentityMapClient } from "../support/grpc.js";

/*
 * One set of cases, run over REST and over gRPC: both front-ends call the same driving port, so they
 * must answer the same calls with the same outcome, error code and field.
 */

interface Key {
  readonly kind: string;
  readonly value: string;
}
type Outcome<T> =
  | { readonly ok: true; readonly body: T }
  | { readonly ok: false; readonly code: string; readonly field?: string };
interface LookupBody {
  readonly found: boolean;
  readonly canonicalId?: string;
  readonly matchedKind?: string;
}

interface Front {
  publish(updates: readonly object[]): Promise<Outcome<{ canonicalIds: (string | null)[]; outcomes: string[] }>>;
  lookup(keys: readonly Key[]): Promise<Outcome<LookupBody>>;
  batchLookup(lookups: readonly (readonly Key[])[]): Promise<Outcome<LookupBody[]>>;
  history(deviceId: string): Promise<Outcome<{ entries: number }>>;
}

const WIRE_KIND: Record<string, string> = { mac: "IDENTITY_KIND_MAC", "armis-id": "IDENTITY_KIND_ARMIS_ID" };
const KIND_OF_WIRE = Object.fromEntries(Object.entries(WIRE_KIND).map(([k, v]) => [v, k]));

async function restFront(rest: FastifyInstance): Promise<Front> {
  const send = async <T>(method: "GET" | "POST", url: string, payload: object | undefined, map: (b: any) => T) => {
    const r = await rest.inject({ method, url, ...(payload ? { payload } : {}) });
    const b = r.json();
    return r.statusCode === 200
      ? ({ ok: true, body: map(b) } as const)
      : ({ ok: false, code: b.error.code, ...(b.error.field ? { field: b.error.field } : {}) } as const);
  };
  const lookupBody = (b: any): LookupBody => ({
    found: b.found,
    ...(b.record ? { canonicalId: b.record.canonical_device_id } : {}),
    ...(b.matched_key ? { matchedKind: b.matched_key.kind } : {}),
  });
  return {
    publish: (updates) =>
      send("POST", "/v1/device-updates", { updates }, (b) => ({
        canonicalIds: b.results.map((r: any) => r.canonical_device_id),
        outcomes: b.results.map((r: any) => r.outcome),
      })),
    lookup: (keys) => send("POST", "/v1/canonical-devices/lookup", { identity_keys: keys }, lookupBody),
    batchLookup: (lookups) =>
      send(
        "POST",
        "/v1/canonical-devices/batch-lookup",
        { lookups: lookups.map((keys) => ({ identity_keys: keys })) },
        (b) => b.results.map(lookupBody),
      ),
    history: (id) =>
      send("GET", `/v1/canonical-devices/${encodeURIComponent(id)}/history`, undefined, (b) => ({
        entries: b.entries.length,
      })),
  };
}

function grpcFront(c: IdentityMapClient): Front {
  const call = async <T>(method: string, request: object, map: (b: any) => T): Promise<Outcome<T>> => {
    const p = c.call(method, request);
    try {
      return { ok: true, body: map(await p) };
    } catch {
      const s = await statusOf(p);
      return { ok: false, code: s.errorCode ?? `grpc-${s.code}`, ...(s.field ? { field: s.field } : {}) };
    }
  };
  const wire = (keys: readonly Key[]) => keys.map((k) => ({ kind: WIRE_KIND[k.kind] ?? k.kind, value: k.value }));
  const lookupBody = (b: any): LookupBody => ({
    found: b.found,
    ...(b.record ? { canonicalId: b.record.canonical_device_id } : {}),
    ...(b.matched_key ? { matchedKind: KIND_OF_WIRE[b.matched_key.kind] ?? b.matched_key.kind } : {}),
  });
  return {
    publish: (updates) =>
      call("PublishDeviceUpdates", { updates }, (b) => ({
        canonicalIds: b.results.map((r: any) => r.canonical_device_id || null),
        outcomes: b.results.map((r: any) =>
          String(r.outcome)
            .replace(/^PUBLISH_OUTCOME_/, "")
            .toLowerCase(),
        ),
      })),
    lookup: (keys) => call("GetCanonicalDevice", { identity_keys: wire(keys) }, lookupBody),
    batchLookup: (lookups) =>
      call("BatchGetCanonicalDevices", { lookups: lookups.map((keys) => ({ identity_keys: wire(keys) })) }, (b) =>
        b.results.map(lookupBody),
      ),
    history: (id) => call("GetDeviceHistory", { device_id: id }, (b) => ({ entries: b.entries.length })),
  };
}

const MAX_BATCH = 3;
let app: App;
let rest: FastifyInstance;
let server: GrpcServer;
let client: IdentityMapClient;
const fronts: Record<string, () => Front> = {};
let restF: Front;
let grpcF: Front;

beforeAll(async () => {
  ({ app } = await testApp({ IDMAP_MAX_BATCH: String(MAX_BATCH), IDMAP_GRPC_PORT: "0" }, new MemoryKv()));
  rest = await buildRestApp(app);
  server = await startGrpcServer(app);
  client = identityMapClient(`127.0.0.1:${server.port}`);
  restF = await restFront(rest);
  grpcF = grpcFront(client);
});
afterAll(async () => {
  client.close();
  await server.close();
  await rest.close();
  await app.close();
});
fronts.rest = () => restF;
fronts.grpc = () => grpcF;

const device = (n: string) => ({
  device_id: `default:10.9.0.${n}`,
  ip: `10.9.0.${n}`,
  partition: "default",
  mac: `02:00:00:00:09:${n.padStart(2, "0")}`,
  source: "armis",
  metadata: { armis_device_id: `FE-${n}` },
});

describe.each(["rest", "grpc"])("front-end behaviour over %s", (name) => {
  // Each front-end gets its own devices, so the cases do not depend on the other's writes.
  const n = name === "rest" ? "1" : "2";
  const front = () => fronts[name]!();

  it("a published device is found by its MAC, matched on the mac key", async () => {
    const p = await front().publish([device(n)]);
    expect(p).toMatchObject({ ok: true, body: { outcomes: ["created"] } });
    const id = p.ok ? p.body.canonicalIds[0] : undefined;
    expect(id).toBeTruthy();
    const hit = await front().lookup([{ kind: "mac", value: device(n).mac }]);
    expect(hit).toEqual({ ok: true, body: { found: true, canonicalId: id, matchedKind: "mac" } });
  });

  it("a miss is found=false, not an error", async () => {
    expect(await front().lookup([{ kind: "armis-id", value: `nobody-${n}` }])).toEqual({
      ok: true,
      body: { found: false },
    });
  });

  it("a batch over the limit is batch_too_large on its field, and nothing is written", async () => {
    const over = Array.from({ length: MAX_BATCH + 1 }, (_, i) => device(`${n}${i}`));
    expect(await front().publish(over)).toEqual({ ok: false, code: "batch_too_large", field: "updates" });
    expect(await front().lookup([{ kind: "mac", value: over[0]!.mac }])).toEqual({ ok: true, body: { found: false } });
    const lookups = Array.from({ length: MAX_BATCH + 1 }, () => [{ kind: "mac", value: device(n).mac }]);
    expect(await front().batchLookup(lookups)).toEqual({ ok: false, code: "batch_too_large", field: "lookups" });
  });

  it("a batch at the limit answers in request order", async () => {
    const r = await front().batchLookup([
      [{ kind: "mac", value: device(n).mac }],
      [{ kind: "armis-id", value: `nobody-${n}` }],
    ]);
    expect(r).toMatchObject({ ok: true, body: [{ found: true, matchedKind: "mac" }, { found: false }] });
  });

  it("a bad MAC is invalid_argument naming the key", async () => {
    const r = await front().lookup([{ kind: "mac", value: "not-a-mac" }]);
    expect(r).toMatchObject({ ok: false, code: "invalid_argument" });
    expect(r.ok ? undefined : r.field).toMatch(/^identity_keys\[0\]/);
  });

  it("the history of a device nobody has seen is not_found", async () => {
    expect(await front().history(`never-seen-${n}`)).toMatchObject({ ok: false, code: "not_found" });
  });
});
