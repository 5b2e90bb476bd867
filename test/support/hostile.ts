import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalizeUpdate, type DeviceUpdate } from "../../src/domain/device-update.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { counterValue, serviceConfig, startService, tempDir, type Service } from "./service.js";

/** The identifier a hostile value is put in: each field of a DeviceUpdate that becomes a key. */
export const FIELDS = ["device_id", "ip", "partition", "mac", "armis_id", "netbox_id"] as const;
export type Field = (typeof FIELDS)[number];

/** Values that have broken key-value stores before: path and subject syntax, wildcards, NUL, NATS API subjects, sizes. */
export const NASTY: readonly string[] = [
  "..",
  ".",
  "/",
  "a/b",
  "../../etc/passwd",
  "*",
  ">",
  "a.*.>",
  "\u0000",
  "a\u0000b",
  "$JS.API.STREAM.DELETE.x",
  "$KV.identity_map.>",
  "a..b",
  ".a",
  "a.",
  "=",
  "=3A",
  "=ZZ",
  "%2F",
  ":",
  "a:b:c",
  " ",
  "\r\n",
  "\t",
  "\ud800",
  "\udc00x",
  "😀",
  "device_canonical_map/mac/AA=3ABB",
  "x".repeat(255),
  "x".repeat(257),
  "é".repeat(200),
  "x".repeat(8 * 1024),
  "é".repeat(8 * 1024),
  // Within the lookup's 1024-character limit, but 9 KB once each byte is escaped as =XX.
  "語".repeat(1000),
  "😀".repeat(500),
  "::ffff",
  "10.0.0.1/32",
  "aa:bb:cc:dd:ee:ff",
  "aabb.ccdd.eeff",
];

/** A hostile value: arbitrary text (any UTF-16, lone surrogates included), the nasty list, and long runs. */
export const hostileValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary-ascii", maxLength: 40 }) },
  { weight: 2, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 200, maxLength: 1100 }) },
  { weight: 1, arbitrary: fc.stringMatching(/^[$.*>/=:a-z0-9\u0000 ]{1,30}$/) },
);

const LOOKUP_KIND: Readonly<Record<Field, string>> = {
  device_id: "device-id",
  ip: "ip",
  partition: "partition-ip",
  mac: "mac",
  armis_id: "armis-id",
  netbox_id: "netbox-id",
};

const QUERY: Readonly<Record<Field, string>> = {
  device_id: "device_id",
  ip: "ip",
  partition: "partition",
  mac: "mac",
  armis_id: "armis_id",
  netbox_id: "netbox_id",
};

/** An update that carries `value` in `field`, anchored to a device of its own (unless the value is the device id). */
function updateWith(field: Field, value: string, anchor: string, ip: string): Record<string, unknown> {
  switch (field) {
    case "device_id":
      return { device_id: value, source: "hostile" };
    case "ip":
      return { device_id: anchor, ip: value, source: "hostile" };
    case "partition":
      return { device_id: anchor, ip, partition: value, source: "hostile" };
    case "mac":
      return { device_id: anchor, mac: value, source: "hostile" };
    case "armis_id":
      return { device_id: anchor, source: "hostile", metadata: { armis_device_id: value } };
    case "netbox_id":
      return { device_id: anchor, source: "hostile", metadata: { integration_type: "netbox", integration_id: value } };
  }
}

function isWellFormed(s: string): boolean {
  try {
    encodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}

export interface HostileBackend {
  readonly name: string;
  readonly env: Record<string, string>;
  /** Removes what the run stored (a bucket or prefix of its own on a shared server). */
  readonly destroy?: (kv: IdentityKv) => Promise<void>;
  readonly numRuns?: number;
}

/**
 * Issue 3, hostile keys: every identifier kind, fed arbitrary strings and the nasty list through the
 * REST app on a real backend, is either refused at the edge (400, or listed in
 * `rejected_identifiers`) or encoded into a key the backend holds, found again by a lookup. Never a
 * 5xx, never a KV error (identitymap_kv_operations_total{result="error"} stays 0).
 */
export function hostileKeysSuite(b: HostileBackend): void {
  describe(`hostile identifiers on ${b.name}`, () => {
    let service: Service;
    const data = tempDir(`hostile-${b.name}`);
    let n = 0;
    const run = Math.random().toString(36).slice(2, 8);

    beforeAll(async () => {
      service = await startService(serviceConfig({ ...b.env, IDMAP_REQUEST_TIMEOUT: "10s" }, data.dir));
    });
    afterAll(async () => {
      if (service) {
        await b.destroy?.(service.app.kv).catch(() => {});
        await service.close();
      }
      data.remove();
    });

    const check = async (field: Field, value: string) => {
      const i = ++n;
      const anchor = `hostile-${run}-${i}`;
      const ip = `10.66.${(i >> 8) & 255}.${i & 255}`;
      const update = updateWith(field, value, anchor, ip);
      const pub = await service.rest.inject({
        method: "POST",
        url: "/v1/device-updates",
        payload: { updates: [update] },
      });
      const where = `${field}=${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…(${value.length})` : value)}`;
      expect(pub.statusCode, `${where}: ${pub.body}`).toBeLessThan(500);
      if (pub.statusCode !== 200) {
        expect(pub.statusCode, where).toBe(400);
        return;
      }
      const result = pub.json().results[0] as { outcome: string; canonical_device_id: string | null };
      expect(result.outcome, `${where}: ${pub.body}`).not.toBe("failed");

      // The keys the value became, as the domain derives them: each must be in the map under its
      // encoded path, found by a lookup of its value (revision > 0: the map answered, not the fallback).
      const kind = LOOKUP_KIND[field];
      const keys = normalizeUpdate(update as DeviceUpdate, { nowMs: 0 }).keys.filter(
        (k) => k.kind === kind && (field !== "device_id" || k.value === value.trim()),
      );
      for (const k of keys) {
        const post = await service.rest.inject({
          method: "POST",
          url: "/v1/canonical-devices/lookup",
          payload: { identity_keys: [{ kind, value: k.value }] },
        });
        expect(post.statusCode, `${where} lookup of ${JSON.stringify(k.value)}: ${post.body}`).toBeLessThan(500);
        if (field === "partition" && value.includes(":")) {
          // `<partition>:<ip>` is ambiguous when the partition holds a ':' (`aa:bb:cc:dd:ee:ff:10.0.0.1`
          // is an IPv6 address): the lookup may refuse it, miss, or find the device; never another one.
          expect([200, 400], `${where} lookup: ${post.body}`).toContain(post.statusCode);
          if (post.statusCode === 200 && post.json().found)
            expect(post.json().record.canonical_device_id).toBe(result.canonical_device_id);
          continue;
        }
        expect(post.statusCode, `${where} lookup: ${post.body}`).toBe(200);
        expect(post.json(), `${where} lookup: ${post.body}`).toMatchObject({
          found: true,
          record: { canonical_device_id: result.canonical_device_id },
        });
        expect(post.json().revision, `${where} lookup: ${post.body}`).toBeGreaterThan(0);
      }

      // The raw value as a lookup key: refused (400) or answered; never a server error.
      const raw = field === "partition" ? `${value}:${ip}` : value;
      const post = await service.rest.inject({
        method: "POST",
        url: "/v1/canonical-devices/lookup",
        payload: { identity_keys: [{ kind, value: raw }] },
      });
      expect([200, 400], `${where} raw lookup: ${post.body}`).toContain(post.statusCode);
      if (isWellFormed(value)) {
        const query = field === "partition" ? { partition: value, ip } : { [QUERY[field]]: value };
        const get = await service.rest.inject({ method: "GET", url: "/v1/canonical-devices/lookup", query });
        expect([200, 400, 404], `${where} GET lookup: ${get.body}`).toContain(get.statusCode);
      }
    };

    it("refuses or stores every nasty value of every identifier kind, and finds what it stored", async () => {
      for (const field of FIELDS) for (const value of NASTY) await check(field, value);
      expect(await counterValue(service.app, "identitymap_kv_operations_total", { result: "error" })).toBe(0);
      expect(await counterValue(service.app, "identitymap_lookup_total", { result: "error" })).toBe(0);
    }, 60_000);

    it("does the same for arbitrary strings (fast-check)", async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...FIELDS), hostileValue, async (field, value) => check(field, value)),
        { numRuns: b.numRuns ?? 150 },
      );
      expect(await counterValue(service.app, "identitymap_kv_operations_total", { result: "error" })).toBe(0);
      expect(await counterValue(service.app, "identitymap_lookup_total", { result: "error" })).toBe(0);
    }, 60_000);
  });
}
