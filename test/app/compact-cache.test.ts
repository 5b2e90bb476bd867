import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openEmbeddedKv } from "../../src/adapters/kv/embedded-kv.js";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { encodeRecord } from "../../src/adapters/proto/record-codec.js";
import { BindingCache } from "../../src/app/bindings/binding-cache.js";
import { BindingStore, decodeBinding } from "../../src/app/bindings/binding-store.js";
import { CompactBindings } from "../../src/app/bindings/compact-bindings.js";
import { silentLogger } from "../../src/app/logger.js";
import type { Binding } from "../../src/domain/binding.js";
import { identityHash, type CanonicalRecord } from "../../src/domain/record.js";
import { keyPath } from "../../src/domain/key-path.js";
import type { IdentityKv, KvScan } from "../../src/ports/identity-kv.js";
import { noopMetrics } from "../../src/ports/metrics.js";
import { waitFor } from "../contract/kv.contract.js";

const attributes = { armis_device_id: "A-1", mac: "02:00:00:00:00:01", hostname: "h1" };
const device: CanonicalRecord = {
  canonicalDeviceId: "p:10.0.0.1",
  partition: "p",
  metadataHash: identityHash("p:10.0.0.1", "p", attributes),
  updatedAtMs: 1_780_000_000_123,
  attributes,
  assertedBy: "armis-id",
  source: "armis",
  authority: false,
  expiresAtMs: 0,
  operationId: "op-1",
  keys: [
    { kind: "armis-id", value: "A-1", sources: [] },
    { kind: "ip", value: "10.0.0.1", sources: ["armis", "sweep"] },
    { kind: "device-id", value: "odd\u0001value", sources: ["x\u0002y"] },
  ],
};

describe("compact bindings", () => {
  it("give back every field of every record but the operation id", () => {
    const c = new CompactBindings();
    const quarantined: CanonicalRecord = {
      ...device,
      keys: [],
      assertedBy: "mac",
      source: "netbox",
      authority: true,
      expiresAtMs: 1_780_086_400_000,
      provisionalSinceMs: 1_779_000_000_000,
      sharedRebindsMs: [1, 2],
      quarantinedSinceMs: 3,
      contenders: ["a", "b"],
    };
    const plain: CanonicalRecord = { ...device, keys: [{ kind: "mac", value: "02:00:00:00:00:01", sources: [] }] };
    const { assertedBy: _, ...unasserted } = { ...device, keys: [] as CanonicalRecord["keys"] };
    const records = { a: device, b: quarantined, c: plain, d: unasserted as CanonicalRecord };
    for (const [k, r] of Object.entries(records)) c.set(k, { record: r, revision: 2 ** 40 + k.charCodeAt(0) });
    for (const [k, r] of Object.entries(records))
      expect(c.get(k)).toEqual({ record: { ...r, operationId: "" }, revision: 2 ** 40 + k.charCodeAt(0) });
    expect(c.get("missing")).toBeUndefined();
  });

  it("share one identity among a device's keys, and drop it with the last of them", () => {
    const c = new CompactBindings();
    c.set("k1", { record: device, revision: 1 });
    // Decoded separately (a fresh instance): equal values, different objects.
    c.set("k2", { record: { ...device, attributes: { ...attributes }, keys: [] }, revision: 2 });
    expect(c.identityCount).toBe(1);
    // Another device that (wrongly) carries the same hash keeps an identity of its own.
    c.set("k3", { record: { ...device, canonicalDeviceId: "other", keys: [] }, revision: 3 });
    expect(c.get("k3")!.record.canonicalDeviceId).toBe("other");
    expect(c.get("k1")!.record.canonicalDeviceId).toBe("p:10.0.0.1");
    c.delete("k1");
    expect(c.identityCount).toBe(1);
    c.set("k2", { record: { ...device, canonicalDeviceId: "moved", metadataHash: "h2", keys: [] }, revision: 4 });
    expect(c.identityCount).toBe(1); // the first device's identity went with its last key
    expect(c.size).toBe(2);
    c.clear();
    expect(c.identityCount).toBe(0);
    expect(c.size).toBe(0);
  });
});

describe("a fresh instance's cache", () => {
  it("answers lookups while it loads: a key not loaded yet is read from the store", async () => {
    const kv = new MemoryKv();
    const n = 60_000; // three load slices
    const value = (i: number) =>
      encodeRecord({ ...device, canonicalDeviceId: `d${i}`, metadataHash: `h${i}`, keys: [] });
    for (let i = 0; i < n; i++) await kv.create(keyPath("ns", { kind: "device-id", value: `d${i}` }), value(i));
    const cache = new BindingCache(kv, "ns/", decodeBinding, silentLogger, { readyWithinMs: 0 });
    await cache.start();
    expect(cache.isSynced).toBe(false);
    // Not synced: no answer of absence, so publish reads the store.
    expect(cache.get(keyPath("ns", { kind: "device-id", value: "nope" }))).toBeUndefined();
    await waitFor(() => cache.isSynced, 20_000);
    expect(cache.size).toBe(n);
    expect(cache.get(keyPath("ns", { kind: "device-id", value: "d59999" }))?.record.canonicalDeviceId).toBe("d59999");
    await cache.stop();
  });

  it("keeps what this instance wrote or deleted while the listing loaded: the older listed value never wins", async () => {
    const kv = new MemoryKv();
    const n = 45_000;
    const path = (i: number) => keyPath("ns", { kind: "device-id", value: `d${i}` });
    const record = (i: number, hash = `h${i}`) => ({
      ...device,
      canonicalDeviceId: `d${i}`,
      metadataHash: hash,
      keys: [],
    });
    for (let i = 0; i < n; i++) await kv.create(path(i), encodeRecord(record(i)));
    const cache = new BindingCache(kv, "ns/", decodeBinding, silentLogger, { readyWithinMs: 0 });
    await cache.start();
    // Our own writes, acknowledged while the listing is still being decoded (the last slice is not in yet).
    const deleted = (await kv.get(path(n - 1)))!;
    await kv.delete(path(n - 1), deleted.revision);
    cache.note(path(n - 1), null, deleted.revision + 1);
    const updated = (await kv.get(path(n - 2)))!;
    const rev = await kv.update(path(n - 2), encodeRecord(record(n - 2, "newer")), updated.revision);
    cache.note(path(n - 2), { record: record(n - 2, "newer"), revision: rev }, rev);
    await waitFor(() => cache.isSynced, 20_000);
    expect(cache.get(path(n - 1))).toBeNull();
    expect(cache.get(path(n - 2))?.record.metadataHash).toBe("newer");
    expect(cache.size).toBe(n - 1);
    await cache.stop();
  });
});

/**
 * The embedded store (SQLite, its own data directory) holding `n` device-id bindings under "ns/", and
 * a view of it that counts what the cache asks: `list` calls, and pages taken from scans.
 */
async function embeddedWith(n: number) {
  const dir = mkdtempSync(join(tmpdir(), "idmap-cache-load-"));
  const { kv, db } = await openEmbeddedKv(dir, "normal");
  const value = (i: number) => encodeRecord({ ...device, canonicalDeviceId: `d${i}`, metadataHash: `h${i}`, keys: [] });
  for (let from = 0; from < n; from += 1000) {
    const writes: Promise<number>[] = [];
    for (let i = from; i < Math.min(n, from + 1000); i++)
      writes.push(kv.create(keyPath("ns", { kind: "device-id", value: `d${i}` }), value(i)));
    await Promise.all(writes);
  }
  const asked = { lists: 0, pages: 0, pageSizes: [] as number[] };
  const counted: IdentityKv = new Proxy(kv, {
    get(target, prop, receiver) {
      if (prop === "list")
        return (prefix: string) => {
          asked.lists++;
          return target.list(prefix);
        };
      if (prop === "scan")
        return async (prefix: string, pageSize: number): Promise<KvScan> => {
          asked.pageSizes.push(pageSize);
          const scan = await target.scan(prefix, pageSize);
          async function* pages() {
            for await (const page of scan.pages) {
              asked.pages++;
              yield page;
            }
          }
          return { revision: scan.revision, pages: pages() };
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  const close = async () => {
    await kv.close();
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  return { kv: counted, asked, close };
}

describe("a fresh instance's cache on the embedded store (issue 13)", () => {
  it("loads the namespace page by page: never listed at once, never a page ahead of what it decoded", async () => {
    const n = 20_000;
    const { kv, asked, close } = await embeddedWith(n);
    try {
      const cache = new BindingCache(kv, "ns/", decodeBinding, silentLogger, { readyWithinMs: 0 });
      await cache.start();
      // Sampled between turns of the event loop while it loads: what it took from the store, what it holds.
      const samples: { pages: number; size: number }[] = [];
      while (!cache.isSynced) {
        samples.push({ pages: asked.pages, size: cache.size });
        await new Promise((r) => setImmediate(r));
      }
      expect(asked.lists).toBe(0);
      const pageSize = asked.pageSizes[0]!;
      expect(asked.pageSizes).toEqual([pageSize]);
      expect(pageSize).toBeLessThan(n);
      expect(asked.pages).toBe(Math.ceil(n / pageSize));
      // Answered in between: some turns saw part of the map loaded.
      expect(samples.some((x) => x.size > 0 && x.size < n)).toBe(true);
      // The page being decoded is the only one taken beyond what the cache holds.
      for (const x of samples) expect(x.pages * pageSize - x.size).toBeLessThanOrEqual(pageSize);
      expect(cache.size).toBe(n);
      await cache.stop();
    } finally {
      await close();
    }
  });

  it("answers a lookup of a key not loaded yet from the store, and absence only from the store", async () => {
    const n = 20_000;
    const { kv, close } = await embeddedWith(n);
    try {
      const cache = new BindingCache(kv, "ns/", decodeBinding, silentLogger, { readyWithinMs: 0 });
      await cache.start();
      const store = new BindingStore(kv, "ns", cache, noopMetrics);
      // Keys load in key order: "d9999" sorts last of "d0".."d19999", so it is not in yet.
      const last = { kind: "device-id", value: "d9999" } as const;
      const absent = { kind: "device-id", value: "nope" } as const;
      expect(cache.isSynced).toBe(false);
      expect(cache.peek(store.path(last))).toBeUndefined();
      const into = new Map<string, Binding | null>();
      // One batch read from the store answers both (the cache cannot: it is still loading).
      expect(await store.load([last, absent], into, false)).toBe(1);
      expect([...into.values()].map((b) => b?.record.canonicalDeviceId ?? null)).toEqual(["d9999", null]);
      await waitFor(() => cache.isSynced, 20_000);
      into.clear();
      // Loaded: the cache answers both, absence included, without a round trip.
      expect(await store.load([last, absent], into, false)).toBe(0);
      expect([...into.values()].map((b) => b?.record.canonicalDeviceId ?? null)).toEqual(["d9999", null]);
      await cache.stop();
    } finally {
      await close();
    }
  });
});
