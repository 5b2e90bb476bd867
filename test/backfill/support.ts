import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqlDeviceStore } from "../../src/adapters/db/sql-device-store.js";
import { openSqlite } from "../../src/adapters/db/sqlite.js";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import type { App } from "../../src/app/container.js";
import { decodeBinding } from "../../src/app/bindings/binding-store.js";
import type { IdentityKey } from "../../src/domain/identity-key.js";
import { keyPath } from "../../src/domain/key-path.js";
import type { DeviceRow } from "../../src/ports/device-store.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { testApp } from "../support/app.js";

export const NOW = 1_780_000_000_000;
export const MIN = 60_000;
export const HOUR = 60 * MIN;

/** A relational row as history holds it: one device id, its newest sighting. */
export function row(deviceId: string, fields: Partial<DeviceRow> = {}): DeviceRow {
  const lastSeenMs = fields.lastSeenMs ?? NOW - HOUR;
  return {
    deviceId,
    canonicalDeviceId: deviceId,
    mergedInto: null,
    partition: deviceId.includes(":") ? deviceId.slice(0, deviceId.indexOf(":")) : "",
    ip: "",
    macs: [],
    armisId: "",
    netboxIds: [],
    hostname: "",
    source: "",
    firstSeenMs: lastSeenMs,
    metadata: {},
    ...fields,
    lastSeenMs,
  };
}

/** Temporary directories this test file made; `removeScratch` (in an afterAll) deletes them. */
const scratch = new Set<string>();
export function removeScratch(): void {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
  scratch.clear();
}
function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.add(dir);
  return dir;
}

export function tmpFile(name: string): string {
  return join(scratchDir("idmap-backfill-"), name);
}

export function readJsonLines<T = Record<string, unknown>>(path: string): T[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as T);
}

/** Every binding as `key -> record` without what differs between equal runs (revision, operation id). */
export async function kvState(kv: IdentityKv): Promise<Record<string, unknown>> {
  const { entries } = await kv.list("");
  const out: Record<string, unknown> = {};
  for (const e of [...entries].sort((a, b) => (a.key < b.key ? -1 : 1))) {
    const { operationId: _op, ...record } = decodeBinding(e.value, e.revision).record;
    out[e.key] = record;
  }
  return out;
}

/** Every relational row and kept tombstone (the audit trail is a log, not state). */
export async function dbState(
  app: Pick<App, "devices">,
): Promise<{ rows: DeviceRow[]; tombstones: { deviceId: string; mergedInto: string; key: unknown }[] }> {
  const rows = await app.devices.listDevices({ limit: 1_000_000 });
  const tombstones = (await app.devices.listTombstones({ limit: 1_000_000 })).map(({ deviceId, mergedInto, key }) => ({
    deviceId,
    mergedInto,
    key,
  }));
  return { rows, tombstones };
}

/** The owner of a binding, straight from the KV. */
export async function owner(
  app: Pick<App, "config">,
  kv: IdentityKv,
  kind: string,
  value: string,
): Promise<string | undefined> {
  const e = await kv.get(keyPath(app.config.namespace, { kind, value } as IdentityKey));
  return e ? decodeBinding(e.value, e.revision).record.canonicalDeviceId : undefined;
}

/**
 * Apps on copies of one relational store loaded with `rows` once (loading 50 000 rows costs seconds;
 * copying the file costs milliseconds). Each app has its own KV; the flag is off, as the backfill
 * seeds the KV whatever the flag says.
 */
export function appsOn(rows: readonly DeviceRow[]): () => Promise<{ app: App; kv: MemoryKv }> {
  let template: Promise<string> | undefined;
  const build = async () => {
    const dir = scratchDir("idmap-history-");
    const file = join(dir, "devices.sqlite");
    const store = new SqlDeviceStore(openSqlite(file, "normal"), "sqlite");
    await store.migrate();
    await store.upsertDevices(rows);
    await store.close();
    return file;
  };
  return async () => {
    template ??= build();
    const dir = scratchDir("idmap-app-");
    copyFileSync(await template, join(dir, "devices.sqlite"));
    const kv = new MemoryKv();
    const { app } = await testApp(
      { CANONICAL_IDENTITY_MAP_ENABLED: "off", IDMAP_DATA_DIR: dir, IDMAP_EMBEDDED_SYNC: "normal" },
      kv,
    );
    const close = app.close.bind(app);
    return { app: { ...app, close: async () => (await close(), rmSync(dir, { recursive: true, force: true })) }, kv };
  };
}

/** A tombstones file as `retired id -> canonical id`. */
export const tombstonePairs = (path: string) =>
  new Map(readJsonLines<{ device_id: string; merged_into: string }>(path).map((t) => [t.device_id, t.merged_into]));

/** Every binding's owner by key path, read once. */
export async function owners(kv: IdentityKv): Promise<Map<string, string>> {
  const { entries } = await kv.list("");
  return new Map(entries.map((e) => [e.key, decodeBinding(e.value, e.revision).record.canonicalDeviceId]));
}
