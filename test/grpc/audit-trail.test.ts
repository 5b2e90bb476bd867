import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGrpcServer, type GrpcServer } from "../../src/adapters/grpc/grpc-server.js";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import { compact } from "../../src/app/bindings/compaction.js";
import { loadConfig } from "../../src/app/config.js";
import { createApp, type App } from "../../src/app/container.js";
import type { Logger } from "../../src/app/logger.js";
import { ManualClock } from "../support/app.js";
import { identityMapClient, type IdentityMapClient } from "../support/grpc.js";

const MIN = 60_000;
const HOUR = 60 * MIN;
const M1 = "02:AA:00:00:00:01";
const M2 = "02:BB:00:00:00:02";

/** Every structured log line with `audit: true`. */
const auditLog: Record<string, unknown>[] = [];
const capture: Logger = {
  info: (obj) => void ((obj as { audit?: boolean }).audit && auditLog.push(obj as Record<string, unknown>)),
  warn() {},
  error() {},
  debug() {},
};

let app: App;
let clock: ManualClock;
let rest: FastifyInstance;
let grpcServer: GrpcServer;
let c: IdentityMapClient;

const armis = (ip: string) => ({
  device_id: `p:${ip}`,
  ip,
  partition: "p",
  mac: M1,
  metadata: { armis_device_id: "A-1" },
  source: "armis",
});

beforeAll(async () => {
  const config = loadConfig({
    IDMAP_DATA_DIR: ":memory:",
    IDMAP_LOG_LEVEL: "silent",
    CANONICAL_IDENTITY_MAP_ENABLED: "on",
    IDMAP_GRPC_PORT: "0",
  });
  clock = new ManualClock();
  app = await createApp(config, { clock, logger: capture, kv: new MemoryKv() });
  rest = await buildRestApp(app);
  grpcServer = await startGrpcServer(app);
  c = identityMapClient(`127.0.0.1:${grpcServer.port}`);

  // A laptop seen by Armis moves IP twice (DHCP); an agent reports it under its own id and MAC,
  // then with the Armis id too (a merge); a day later its last address has expired.
  const publish = (updates: object[]) =>
    rest.inject({ method: "POST", url: "/v1/device-updates", payload: { updates } });
  await publish([armis("10.0.0.5")]);
  clock.advance(MIN);
  await publish([armis("10.0.0.6")]);
  clock.advance(MIN);
  await publish([{ device_id: "agent-7", mac: M2, source: "agent" }]);
  clock.advance(MIN);
  await publish([armis("10.0.0.7")]);
  clock.advance(MIN);
  await c.call("PublishDeviceUpdates", {
    updates: [{ device_id: "agent-7", mac: M2, metadata: { armis_device_id: "A-1" }, source: "agent" }],
  });
  clock.advance(25 * HOUR);
  await compact(app.store, app.devices, clock.nowMs(), app.metrics, app.log);
});
afterAll(async () => {
  c.close();
  await grpcServer.close();
  await rest.close();
  await app.close();
});

/** The laptop's trail, oldest first: reason, key, from → to. */
const EXPECTED = [
  "created device-id p:10.0.0.5 - → p:10.0.0.5",
  "created armis-id A-1 - → p:10.0.0.5",
  `created mac ${M1} - → p:10.0.0.5`,
  "created partition-ip p:10.0.0.5 - → p:10.0.0.5",
  "created ip 10.0.0.5 - → p:10.0.0.5",
  // first move: the new address, the new address-derived id redirects, the old address goes
  "linked partition-ip p:10.0.0.6 - → p:10.0.0.5",
  "linked ip 10.0.0.6 - → p:10.0.0.5",
  "merged device-id p:10.0.0.6 - → p:10.0.0.5",
  "moved partition-ip p:10.0.0.5 p:10.0.0.5 → -",
  "moved ip 10.0.0.5 p:10.0.0.5 → -",
  // second move
  "linked partition-ip p:10.0.0.7 - → p:10.0.0.5",
  "linked ip 10.0.0.7 - → p:10.0.0.5",
  "merged device-id p:10.0.0.7 - → p:10.0.0.5",
  "moved partition-ip p:10.0.0.6 p:10.0.0.5 → -",
  "moved ip 10.0.0.6 p:10.0.0.5 → -",
  // the merge: the agent's device and every binding it had follow the laptop
  `merged mac ${M2} agent-7 → p:10.0.0.5`,
  "merged device-id agent-7 agent-7 → p:10.0.0.5",
  // a day later the last address has expired
  "expired partition-ip p:10.0.0.7 p:10.0.0.5 → -",
  "expired ip 10.0.0.7 p:10.0.0.5 → -",
];

interface Entry {
  id: number;
  at_unix_millis: number;
  actor: string;
  key: { kind: string | number; value: string };
  from_device_id: string | null;
  to_device_id: string | null;
  revision: number | null;
  reason: string;
}

const line = (e: Entry, kind: string) =>
  `${e.reason} ${kind} ${e.key.value} ${e.from_device_id || "-"} → ${e.to_device_id || "-"}`;
const KIND_NAMES: Record<string, string> = {
  IDENTITY_KIND_DEVICE_ID: "device-id",
  IDENTITY_KIND_ARMIS_ID: "armis-id",
  IDENTITY_KIND_MAC: "mac",
  IDENTITY_KIND_IP: "ip",
  IDENTITY_KIND_PARTITION_IP: "partition-ip",
};

/** Reads every page (newest first) with a small page size, so paging is part of what is checked. */
async function allPages(
  page: (before?: number) => Promise<{ entries: Entry[]; next?: number | null }>,
): Promise<Entry[]> {
  const out: Entry[] = [];
  let before: number | undefined;
  for (let i = 0; i < 50; i++) {
    const p = await page(before);
    out.push(...p.entries);
    if (!p.next) return out;
    before = p.next;
  }
  throw new Error("paging did not end");
}

function checkTrail(newestFirst: Entry[], kindOf: (e: Entry) => string): void {
  const oldestFirst = [...newestFirst].reverse();
  expect(oldestFirst.map((e) => line(e, kindOf(e)))).toEqual(EXPECTED);
  const ids = oldestFirst.map((e) => e.id);
  expect(ids).toEqual([...ids].sort((a, b) => a - b));
  const times = oldestFirst.map((e) => e.at_unix_millis);
  expect(times).toEqual([...times].sort((a, b) => a - b));
  expect(oldestFirst.every((e) => e.revision !== null && e.revision > 0)).toBe(true);
  expect(new Set(oldestFirst.map((e) => e.actor))).toEqual(new Set(["anonymous", "compaction"]));
}

describe("the audit trail of a device that moved IP twice and was merged once", () => {
  it("reads back complete and in order over REST, paged", async () => {
    const entries = await allPages(async (before) => {
      const r = await rest.inject({
        url: `/v1/canonical-devices/p:10.0.0.5/history?limit=4${before ? `&before=${before}` : ""}`,
      });
      expect(r.statusCode).toBe(200);
      return r.json();
    });
    checkTrail(entries, (e) => String(e.key.kind));
  });

  it("reads back the same over gRPC GetDeviceHistory, paged", async () => {
    const entries = await allPages(async (before) => {
      const r = await c.call("GetDeviceHistory", { device_id: "p:10.0.0.5", limit: 4, ...(before ? { before } : {}) });
      return { entries: r.entries, next: r.next };
    });
    checkTrail(entries, (e) => KIND_NAMES[String(e.key.kind)]!);
    const viaRest = (await rest.inject({ url: "/v1/canonical-devices/p:10.0.0.5/history?limit=500" })).json()
      .entries as Entry[];
    expect(
      entries.map((e) => [
        e.id,
        e.at_unix_millis,
        e.actor,
        e.key.value,
        e.from_device_id || null,
        e.to_device_id || null,
        e.revision,
        e.reason,
      ]),
    ).toEqual(
      viaRest.map((e) => [
        e.id,
        e.at_unix_millis,
        e.actor,
        e.key.value,
        e.from_device_id,
        e.to_device_id,
        e.revision,
        e.reason,
      ]),
    );
  });

  it("the merged device's own trail ends in the merge", async () => {
    const r = (await rest.inject({ url: "/v1/canonical-devices/agent-7/history" })).json();
    expect(r.entries.map((e: Entry) => `${e.reason} ${e.key.kind} ${e.to_device_id}`)).toEqual([
      "merged device-id p:10.0.0.5",
      "merged mac p:10.0.0.5",
      "created mac agent-7",
      "created device-id agent-7",
    ]);
  });

  it("every change is also a structured log line", async () => {
    const all = await app.devices.history("p:10.0.0.5", { limit: 500 });
    const agent = await app.devices.history("agent-7", { limit: 500 });
    const ids = new Set([...all.entries, ...agent.entries].map((e) => e.id));
    expect(auditLog.length).toBe(ids.size);
    expect(
      auditLog.every((l) => typeof l.reason === "string" && typeof l.actor === "string" && typeof l.key === "string"),
    ).toBe(true);
  });

  it("bad paging input is a 400; an unknown device a 404", async () => {
    expect((await rest.inject({ url: "/v1/canonical-devices/p:10.0.0.5/history?limit=501" })).statusCode).toBe(400);
    expect((await rest.inject({ url: "/v1/canonical-devices/p:10.0.0.5/history?limit=0" })).statusCode).toBe(400);
    expect((await rest.inject({ url: "/v1/canonical-devices/p:10.0.0.5/history?before=abc" })).statusCode).toBe(400);
    expect((await rest.inject({ url: "/v1/canonical-devices/nobody/history" })).statusCode).toBe(404);
    const last = (await rest.inject({ url: "/v1/canonical-devices/p:10.0.0.5/history?limit=50" })).json();
    expect(last.next).toBeUndefined();
    expect(last.entries).toHaveLength(EXPECTED.length);
  });
});

describe("an address that expired and was taken by another device", () => {
  it("shows in the first device's trail as leaving it", async () => {
    clock.advance(MIN);
    // 10.0.0.7 expired above but compaction already removed it; make a fresh one expire un-compacted.
    await app.publish.publish(
      [{ device_id: "srv-1", ip: "10.9.0.1", partition: "p", metadata: { armis_device_id: "S-1" }, source: "armis" }],
      "w",
    );
    clock.advance(25 * HOUR);
    await app.publish.publish(
      [{ device_id: "srv-2", ip: "10.9.0.1", partition: "p", metadata: { armis_device_id: "S-2" }, source: "armis" }],
      "w",
    );
    const h = await app.devices.history("srv-1", { limit: 50 });
    const taken = h.entries.filter((e) => e.key.value.endsWith("10.9.0.1") && e.toDeviceId === "srv-2");
    expect(taken.map((e) => `${e.reason} ${e.key.kind} ${e.fromDeviceId}`).sort()).toEqual([
      "created ip srv-1",
      "created partition-ip srv-1",
    ]);
  });
});
