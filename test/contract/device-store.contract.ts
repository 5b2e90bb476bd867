import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEntry, DeviceRow, DeviceStore } from "../../src/ports/device-store.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { kvContract } from "./kv.contract.js";

export interface DeviceStoreFixture {
  /** Opens a store on this run's database (created on first use); every call is another client. */
  open(): Promise<DeviceStore>;
  /** Drops this run's database; called once, after every suite of the fixture. */
  dispose(): Promise<void>;
}

/**
 * The DeviceStore contract, and the IdentityKv contract on its relational binding table. Device ids
 * are unique per run, so the suite would also pass on a shared database.
 */
export function deviceStoreContract(name: string, fixture: DeviceStoreFixture): void {
  describe(`DeviceStore: ${name}`, () => {
    afterAll(async () => {
      await fixture.dispose();
    });

    describe("devices, identities and audit", () => {
      let store: DeviceStore;
      const run = `ds${randomUUID().replace(/-/g, "").slice(0, 12)}`;
      let n = 0;
      const id = (label = "dev") => `${run}-${label}-${++n}`;
      /** An address no other test (or run) uses; the store treats addresses as text. */
      const ip = () => `${run}.ip${++n}`;

      const row = (over: Partial<DeviceRow> & { deviceId: string }): DeviceRow => ({
        canonicalDeviceId: over.deviceId,
        mergedInto: null,
        partition: "",
        ip: "",
        macs: [],
        armisId: "",
        netboxIds: [],
        hostname: "",
        source: "test",
        firstSeenMs: 1_000,
        lastSeenMs: 1_000,
        metadata: {},
        ...over,
      });

      beforeAll(async () => {
        store = await fixture.open();
        await store.migrate();
      });
      afterAll(async () => {
        await store?.close();
      });

      it("migrates again without change and answers ping", async () => {
        await store.migrate();
        await store.ping();
        expect(["sqlite", "postgres"]).toContain(store.dialect);
      });

      it("round-trips every field of a row; an unknown id is null", async () => {
        const r = row({
          deviceId: id(),
          canonicalDeviceId: `${run}-canonical`,
          partition: "tenant-a",
          ip: "192.0.2.10",
          macs: ["AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:02"],
          armisId: `${run}-armis`,
          netboxIds: [`${run}-nb1`, `${run}-nb2`],
          hostname: "host-ä.example",
          source: "armis",
          firstSeenMs: 1_700_000_000_123,
          lastSeenMs: 1_700_000_999_456,
          metadata: { site: "berlin", note: 'quote " and unicode ✓' },
        });
        await store.upsertDevices([r]);
        expect(await store.getDevice(r.deviceId)).toEqual(r);
        expect(await store.getDevice(id("missing"))).toBeNull();
        await store.upsertDevices([]);
      });

      it("keeps whether a device is provisional; a take-over (a row that is not) clears it", async () => {
        const deviceId = id();
        await store.upsertDevices([row({ deviceId, provisional: true })]);
        expect((await store.getDevice(deviceId))?.provisional).toBe(true);
        await store.upsertDevices([row({ deviceId, provisional: false, lastSeenMs: 9_000 })]);
        expect((await store.getDevice(deviceId))?.provisional).toBeUndefined();
      });

      it("replaces a row by device id, keeping the earliest first sighting; the last row of a batch wins", async () => {
        const deviceId = id();
        await store.upsertDevices([row({ deviceId, hostname: "one", firstSeenMs: 2_000, lastSeenMs: 2_000 })]);
        await store.upsertDevices([
          row({ deviceId, hostname: "two", firstSeenMs: 5_000, lastSeenMs: 5_000 }),
          row({ deviceId, hostname: "three", firstSeenMs: 6_000, lastSeenMs: 6_000, metadata: { k: "v" } }),
        ]);
        const got = await store.getDevice(deviceId);
        expect(got).toMatchObject({ hostname: "three", firstSeenMs: 2_000, lastSeenMs: 6_000, metadata: { k: "v" } });
        // A backfilled older sighting moves the first sighting back.
        await store.upsertDevices([row({ deviceId, hostname: "three", firstSeenMs: 1_500, lastSeenMs: 6_000 })]);
        expect((await store.getDevice(deviceId))!.firstSeenMs).toBe(1_500);
      });

      it("finds a device by each identity it carries", async () => {
        const addr = ip();
        const r = row({
          deviceId: id(),
          partition: `${run}-p`,
          ip: addr,
          macs: [`${run}-mac-1`, `${run}-mac-2`],
          armisId: `${run}-armis-find`,
          netboxIds: [`${run}-netbox-find`],
        });
        await store.upsertDevices([r]);
        const keys = [
          { kind: "armis-id", value: r.armisId },
          { kind: "netbox-id", value: r.netboxIds[0]! },
          { kind: "mac", value: r.macs[0]! },
          { kind: "mac", value: r.macs[1]! },
          { kind: "ip", value: addr },
          { kind: "partition-ip", value: `${r.partition}:${addr}` },
          { kind: "device-id", value: r.deviceId },
        ] as const;
        for (const key of keys)
          expect((await store.findByIdentity(key))?.deviceId, `${key.kind} ${key.value}`).toBe(r.deviceId);
        expect(await store.findByIdentity({ kind: "mac", value: `${run}-mac-none` })).toBeNull();
        expect(await store.findByIdentity({ kind: "partition-ip", value: addr })).toBeNull();
      });

      it("touches a row: its last sighting and source move on, with its current identities' and not its former ones'", async () => {
        const a = id("touched");
        const b = id("other");
        const [mac1, mac2] = [`${run}-mac-t1`, `${run}-mac-t2`];
        const addr = ip();
        await store.upsertDevices([row({ deviceId: a, macs: [mac1], lastSeenMs: 1_000 })]);
        // a's MAC changes: mac1 stays one of its identities, last seen at 1 000 (a former one).
        await store.upsertDevices([row({ deviceId: a, macs: [mac2], ip: addr, hostname: "a", lastSeenMs: 2_000 })]);
        await store.upsertDevices([row({ deviceId: b, macs: [mac1, mac2], lastSeenMs: 3_000 })]);
        expect((await store.findByIdentity({ kind: "mac", value: mac2 }))?.deviceId).toBe(b);

        await store.touchDevices([
          { deviceId: a, lastSeenMs: 3_500, source: "poller" },
          { deviceId: a, lastSeenMs: 4_000, source: "agent" }, // the last touch of a device wins
          { deviceId: id("missing"), lastSeenMs: 4_000, source: "agent" },
        ]);
        await store.touchDevices([]);
        const got = await store.getDevice(a);
        expect(got).toEqual(
          row({ deviceId: a, macs: [mac2], ip: addr, hostname: "a", lastSeenMs: 4_000, source: "agent" }),
        );
        // Its current identities were seen at 4 000, after b's 3 000: they name a now.
        expect((await store.findByIdentity({ kind: "mac", value: mac2 }))?.deviceId).toBe(a);
        expect((await store.findByIdentity({ kind: "ip", value: addr }))?.deviceId).toBe(a);
        // Its former MAC was not seen again: b, seen with it at 3 000, still answers.
        expect((await store.findByIdentity({ kind: "mac", value: mac1 }))?.deviceId).toBe(b);
        expect(await store.getDevice(`${run}-missing-${n}`)).toBeNull();
      });

      it("keys a device without a partition by its bare address", async () => {
        const addr = ip();
        const r = row({ deviceId: id(), ip: addr });
        await store.upsertDevices([r]);
        expect((await store.findByIdentity({ kind: "partition-ip", value: addr }))?.deviceId).toBe(r.deviceId);
      });

      it("finds the newest live device for an identity; merged rows and addresses left behind do not match", async () => {
        const mac = `${run}-mac-shared`;
        const addr = ip();
        const older = row({ deviceId: id("older"), macs: [mac], ip: addr, lastSeenMs: 10_000 });
        const newer = row({ deviceId: id("newer"), macs: [mac], ip: addr, lastSeenMs: 20_000 });
        await store.upsertDevices([older, newer]);
        expect((await store.findByIdentity({ kind: "mac", value: mac }))?.deviceId).toBe(newer.deviceId);

        await store.upsertDevices([{ ...newer, mergedInto: older.deviceId, canonicalDeviceId: older.deviceId }]);
        expect((await store.findByIdentity({ kind: "mac", value: mac }))?.deviceId).toBe(older.deviceId);
        // The merged row itself is still there, by id, as a tombstone.
        expect(await store.getDevice(newer.deviceId)).toMatchObject({ mergedInto: older.deviceId });

        // The older device moves to another address: the address it left no longer finds it.
        const moved = ip();
        await store.upsertDevices([{ ...older, ip: moved, lastSeenMs: 30_000 }]);
        expect(await store.findByIdentity({ kind: "ip", value: addr })).toBeNull();
        expect(await store.findByIdentity({ kind: "partition-ip", value: addr })).toBeNull();
        expect((await store.findByIdentity({ kind: "ip", value: moved }))?.deviceId).toBe(older.deviceId);
        expect((await store.findByIdentity({ kind: "mac", value: mac }))?.deviceId).toBe(older.deviceId);
      });

      it("lists devices in id order, by page, optionally by partition", async () => {
        const partition = `${run}-list`;
        const rows = Array.from({ length: 7 }, (_, i) =>
          row({ deviceId: `${run}-list-${String(i).padStart(2, "0")}`, partition }),
        );
        await store.upsertDevices([...rows].reverse());
        const seen: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await store.listDevices({
            limit: 3,
            partition,
            ...(after !== undefined ? { afterDeviceId: after } : {}),
          });
          if (page.length === 0) break;
          expect(page.length).toBeLessThanOrEqual(3);
          seen.push(...page.map((r) => r.deviceId));
          after = page[page.length - 1]!.deviceId;
        }
        expect(seen).toEqual(rows.map((r) => r.deviceId));
        const unfiltered = await store.listDevices({ limit: 1000, afterDeviceId: `${run}-list-` });
        expect(unfiltered.slice(0, 7).map((r) => r.deviceId)).toEqual(seen);
      });

      it("lists canonical devices with their keys, filtered, by page in id order", async () => {
        const partition = `${run}-canon`;
        const d = (i: number, over: Partial<DeviceRow> = {}) =>
          row({ deviceId: `${run}-canon-${String(i).padStart(2, "0")}`, partition, ...over });
        const sweep = `${partition}:${run}.sweep`;
        const rows = [
          d(0, { macs: ["AA:00:00:00:00:01"], ip: "10.9.0.1", hostname: "printer", source: "armis", armisId: "A-1" }),
          d(1, { macs: ["AA:00:00:00:00:02"], hostname: "printer", source: "agent", lastSeenMs: 5_000 }),
          d(2, { source: "agent", lastSeenMs: 9_000 }),
          d(3, { mergedInto: `${run}-canon-00`, canonicalDeviceId: `${run}-canon-00` }),
          row({ deviceId: sweep, partition, ip: `${run}.sweep`, source: "sweep", lastSeenMs: 7_000 }),
        ];
        await store.upsertDevices(rows);
        const all = async (filter: Parameters<DeviceStore["listCanonicalDevices"]>[0]) => {
          const seen: string[] = [];
          let after: string | undefined;
          for (;;) {
            const page = await store.listCanonicalDevices(filter, {
              limit: 2,
              ...(after !== undefined ? { afterDeviceId: after } : {}),
            });
            if (page.length === 0) return seen;
            expect(page.length).toBeLessThanOrEqual(2);
            seen.push(...page.map((r) => r.deviceId));
            after = page[page.length - 1]!.deviceId;
          }
        };
        // The merged row is a tombstone, not a device.
        expect(await all({ partition })).toEqual([d(0).deviceId, d(1).deviceId, d(2).deviceId, sweep]);
        expect(await all({ partition, source: "agent" })).toEqual([d(1).deviceId, d(2).deviceId]);
        expect(await all({ partition, hostname: "printer" })).toEqual([d(0).deviceId, d(1).deviceId]);
        expect(await all({ partition, updatedSinceMs: 7_000 })).toEqual([d(2).deviceId, sweep]);
        expect(await all({ partition, provisional: true })).toEqual([sweep]);
        expect(await all({ partition, provisional: false })).toEqual([d(0).deviceId, d(1).deviceId, d(2).deviceId]);

        const [first] = await store.listCanonicalDevices({ partition }, { limit: 1 });
        expect(first).toMatchObject({ deviceId: d(0).deviceId, provisional: false, armisId: "A-1" });
        expect(first!.keys).toEqual([
          { kind: "device-id", value: d(0).deviceId },
          { kind: "armis-id", value: "A-1" },
          { kind: "mac", value: "AA:00:00:00:00:01" },
          { kind: "partition-ip", value: `${partition}:10.9.0.1` },
          { kind: "ip", value: "10.9.0.1" },
        ]);
        const [swept] = await store.listCanonicalDevices({ partition, source: "sweep" }, { limit: 5 });
        expect(swept).toMatchObject({ deviceId: sweep, provisional: true });
      });

      it("upserts and audits large batches", async () => {
        const rows = Array.from({ length: 650 }, (_, i) =>
          row({ deviceId: `${run}-bulk-${String(i).padStart(4, "0")}`, macs: [`${run}-bulk-mac-${i}`] }),
        );
        await store.upsertDevices(rows);
        const listed = await store.listDevices({ limit: 1000, afterDeviceId: `${run}-bulk-` });
        expect(listed.filter((r) => r.deviceId.startsWith(`${run}-bulk-`))).toHaveLength(650);
        expect((await store.findByIdentity({ kind: "mac", value: `${run}-bulk-mac-649` }))?.deviceId).toBe(
          rows[649]!.deviceId,
        );
        const device = id("bulk-audit");
        const audit: AuditEntry[] = Array.from({ length: 1_100 }, (_, i) => ({
          atMs: i,
          actor: "bulk",
          key: { kind: "mac", value: `m${i}` },
          fromDeviceId: null,
          toDeviceId: device,
          revision: i + 1,
          reason: "created",
        }));
        await store.appendAudit(audit);
        const page = await store.history(device, { limit: 2_000 });
        expect(page.entries).toHaveLength(1_100);
        expect(page.next).toBeUndefined();
      });

      it("records tombstones: the retired row and rows merged into it point at the survivor; idempotent", async () => {
        const survivor = id("survivor");
        const retired = id("retired");
        const earlier = id("earlier");
        await store.upsertDevices([
          row({ deviceId: survivor }),
          row({ deviceId: retired }),
          row({ deviceId: earlier, mergedInto: retired, canonicalDeviceId: retired }),
        ]);
        const entry = {
          deviceId: retired,
          mergedInto: survivor,
          key: { kind: "armis-id", value: `${run}-a` } as const,
          atMs: 7,
          actor: "backfill",
        };
        await store.recordTombstones([entry]);
        await store.recordTombstones([entry]);
        await store.recordTombstones([]);
        expect(await store.getDevice(retired)).toMatchObject({ mergedInto: survivor, canonicalDeviceId: survivor });
        expect(await store.getDevice(earlier)).toMatchObject({ mergedInto: survivor, canonicalDeviceId: survivor });
        expect(await store.getDevice(survivor)).toMatchObject({ mergedInto: null });

        const unkeyed = { deviceId: `${retired}-x`, mergedInto: survivor, key: null, atMs: 8, actor: "backfill" };
        await store.recordTombstones([unkeyed]);
        const listed = await store.listTombstones({ limit: 10, afterDeviceId: retired.slice(0, -1) });
        expect(listed.filter((t) => t.deviceId.startsWith(retired))).toEqual([entry, unkeyed]);
        expect(await store.listTombstones({ limit: 1, afterDeviceId: retired })).toEqual([unkeyed]);
      });

      it("keeps a job's state until it is cleared", async () => {
        const job = id("job");
        expect(await store.getJobState(job)).toBeNull();
        await store.putJobState(job, '{"after":"a"}', 1);
        await store.putJobState(job, '{"after":"b"}', 2);
        expect(await store.getJobState(job)).toBe('{"after":"b"}');
        await store.putJobState(job, null, 3);
        expect(await store.getJobState(job)).toBeNull();
      });

      it("keeps the audit trail of a device, newest first, in pages", async () => {
        const a = id("audit-a");
        const b = id("audit-b");
        const entries: AuditEntry[] = [
          {
            atMs: 1,
            actor: "writer-1",
            key: { kind: "mac", value: "AA:AA:AA:AA:AA:01" },
            fromDeviceId: null,
            toDeviceId: a,
            revision: 11,
            reason: "created",
          },
          {
            atMs: 2,
            actor: "writer-1",
            key: { kind: "ip", value: "192.0.2.1" },
            fromDeviceId: a,
            toDeviceId: b,
            revision: 12,
            reason: "moved",
          },
          {
            atMs: 3,
            actor: "compactor",
            key: { kind: "ip", value: "192.0.2.2" },
            fromDeviceId: b,
            toDeviceId: null,
            revision: null,
            reason: "expired",
          },
          {
            atMs: 4,
            actor: "writer-2",
            key: { kind: "device-id", value: a },
            fromDeviceId: a,
            toDeviceId: b,
            revision: 14,
            reason: "merged",
          },
          {
            atMs: 5,
            actor: "other",
            key: { kind: "mac", value: "AA:AA:AA:AA:AA:09" },
            fromDeviceId: null,
            toDeviceId: id("unrelated"),
            revision: 15,
            reason: "created",
          },
        ];
        await store.appendAudit(entries);
        await store.appendAudit([]);

        const all = await store.history(b, { limit: 10 });
        expect(all.entries.map((e) => e.atMs)).toEqual([4, 3, 2]);
        expect(all.next).toBeUndefined();
        const { id: _id, ...newest } = all.entries[0]!;
        expect(newest).toEqual(entries[3]);
        expect(all.entries[1]).toMatchObject({ toDeviceId: null, revision: null, reason: "expired" });

        const first = await store.history(a, { limit: 2 });
        expect(first.entries.map((e) => e.atMs)).toEqual([4, 2]);
        expect(first.next).toBeDefined();
        const second = await store.history(a, { limit: 2, before: first.next! });
        expect(second.entries.map((e) => e.atMs)).toEqual([1]);
        expect(second.next).toBeUndefined();
        expect((await store.history(id("nobody"), { limit: 5 })).entries).toEqual([]);
      });

      it("as of a time: the last change at or before it, and the first after; pin conflicts are not holdings", async () => {
        const key = { kind: "partition-ip", value: `p:${ip()}` } as const;
        const [a, b] = [id("asof"), id("asof")];
        const at = (atMs: number, from: string | null, to: string | null, reason: AuditEntry["reason"]) => ({
          atMs,
          actor: "t",
          key,
          fromDeviceId: from,
          toDeviceId: to,
          revision: null,
          reason,
        });
        await store.appendAudit([
          at(1_000, null, a, "created"),
          at(2_000, a, null, "moved"),
          at(3_000, null, b, "created"),
          at(3_500, b, a, "pin_conflict"),
        ]);
        expect((await store.keyAsOf(key, 999)).before).toBeNull();
        const during = await store.keyAsOf(key, 1_500);
        expect([during.before?.toDeviceId, during.after?.atMs]).toEqual([a, 2_000]);
        expect((await store.keyAsOf(key, 2_000)).before?.toDeviceId).toBeNull();
        const after = await store.keyAsOf(key, 3_600);
        expect([after.before?.toDeviceId, after.after]).toEqual([b, null]);
        const conflicts = await store.pinConflicts({ limit: 10 });
        expect(conflicts.entries.map((e) => [e.key.value, e.toDeviceId])).toContainEqual([key.value, a]);
      });

      it("retention prunes old entries but keeps each key's latest (it says who holds the key since)", async () => {
        const old = { kind: "mac", value: `${run}-prune-old` } as const;
        const kept = { kind: "mac", value: `${run}-prune-kept` } as const;
        const dev = id("prune");
        const e = (key: typeof old | typeof kept, atMs: number) => ({
          atMs,
          actor: "t",
          key,
          fromDeviceId: null,
          toDeviceId: dev,
          revision: null,
          reason: "created" as const,
        });
        await store.appendAudit([e(old, 10), e(old, 20), e(kept, 15), e(old, 5_000_000)]);
        expect(await store.pruneAudit(1_000)).toBeGreaterThanOrEqual(2);
        expect((await store.keyAsOf(old, 100)).before).toBeNull();
        expect((await store.keyAsOf(old, 5_000_001)).before?.atMs).toBe(5_000_000);
        expect((await store.keyAsOf(kept, 100)).before?.atMs).toBe(15);
      });
    });

    kvContract(
      `${name} relational binding table`,
      async () => {
        const store = await fixture.open();
        await store.migrate();
        return { kv: store.bindings(), cleanup: () => store.close() };
      },
      {
        // Another client on the same database: its watch must see writes the first one made.
        secondClient: async () => {
          const other = await fixture.open();
          return closingWith(other.bindings(), () => other.close());
        },
        // Keyset pages of at most the size asked for, each read when asked for.
        scan: { pageSize: "limit", reads: "on-demand" },
      },
    );
  });
}

/** The binding table of a store opened only for it: closing it closes the store. */
function closingWith(kv: IdentityKv, close: () => Promise<void>): IdentityKv {
  return {
    backend: kv.backend,
    get: (k) => kv.get(k),
    getMany: (k) => kv.getMany(k),
    create: (k, v, o) => kv.create(k, v, o),
    update: (k, v, r, o) => kv.update(k, v, r, o),
    delete: (k, r) => kv.delete(k, r),
    list: (p) => kv.list(p),
    watch: (p, r, c, e) => kv.watch(p, r, c, e),
    scan: (p, n) => kv.scan(p, n),
    resumePoint: (r) => kv.resumePoint(r),
    ping: () => kv.ping(),
    close: async () => {
      await kv.close();
      await close();
    },
  };
}
