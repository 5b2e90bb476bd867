import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { batches, churn, jitter, prng, type Sighting } from "./churn.js";
import { findViolations, grouping, snapshot, type MapSnapshot } from "./invariants.js";
import { expectConsistent } from "./check.js";
import { until } from "./servers.js";
import { postUpdates, serviceConfig, sharedKv, startService, twoOnOneStore, type Service } from "./service.js";

/** Two service instances on one store, each with its own cache and relational database. */
export interface Pair {
  readonly a: Service;
  readonly b: Service;
  /** A client on the store with no cache, for reading the map as it is. */
  readonly direct: IdentityKv;
  close(): Promise<void>;
}

export type PairFactory = () => Promise<Pair>;

/** Two instances on one MemoryKv (in-process: the watch is synchronous, the interleaving comes from the awaits). */
export async function memoryPair(): Promise<Pair> {
  const kv = new MemoryKv();
  const { x: a, y: b } = await twoOnOneStore(sharedKv(kv), sharedKv(kv));
  return { a, b, direct: kv, close: async () => (await Promise.all([a.close(), b.close()]), await kv.close()) };
}

/** Two instances on a server backend: each opens its own connections, on one store of its own. */
export function serverPair(env: Record<string, string>, destroy: (kv: IdentityKv) => Promise<void>): PairFactory {
  return async () => {
    const config = serviceConfig(env, ":memory:");
    const a = await startService(config);
    const b = await startService(config);
    const direct = a.app.kv;
    return {
      a,
      b,
      direct,
      close: async () => {
        await destroy(direct).catch(() => {});
        await Promise.all([a.close(), b.close()]);
      },
    };
  };
}

const label = (s: Sighting, i: number) => `${i}:${s.update.source}`;

/** Every invariant violation, as text (the races races.test.ts forces are fixed: none is tolerated). */
function unexplained(snap: MapSnapshot, _when: string): string[] {
  return findViolations(snap).map((v) => v.text);
}

async function publishAll(service: Service, sightings: readonly Sighting[], size: number): Promise<string[]> {
  const outcomes: string[] = [];
  for (const batch of batches(sightings, size)) {
    const r = await postUpdates(
      service.rest,
      batch.map((s) => s.update),
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    for (const res of r.body.results as { outcome: string }[]) outcomes.push(res.outcome);
  }
  return outcomes;
}

async function resolveAll(service: Service, sightings: readonly Sighting[]): Promise<(string | null)[]> {
  const r = await service.rest.inject({
    method: "POST",
    url: "/v1/device-updates/resolve",
    payload: { updates: sightings.map((s) => s.update) },
  });
  expect(r.statusCode).toBe(200);
  return (r.json().results as { canonical_device_id: string | null }[]).map((x) => x.canonical_device_id);
}

/**
 * Issue 3: two instances publish overlapping streams at once (same devices reported by different
 * sources, in different orders: Armis and sweeps on one, agents, NetBox and Armis again, late and
 * reordered, on the other), through DHCP moves, a newcomer reusing an address and a MAC moving
 * between Armis devices. The map they leave must satisfy the invariants (invariants.ts), republishing
 * must change nothing, and where order cannot matter (updates that carry an Armis id) the grouping
 * of updates into devices must equal a single instance's and the ground truth.
 */
export function consistencySuite(
  name: string,
  pair: PairFactory,
  options: { devices?: number; seed?: number } = {},
): void {
  describe(`two instances publishing at once on ${name}`, () => {
    const pairs: Pair[] = [];
    afterAll(async () => {
      for (const p of pairs) await p.close().catch(() => {});
    });

    it("leave a map that satisfies the invariants and groups devices as a single instance does", async () => {
      const seed =
        options.seed ??
        (process.env.IDMAP_TEST_SEED
          ? Number(process.env.IDMAP_TEST_SEED)
          : Number.parseInt(randomBytes(3).toString("hex"), 16));
      const run = randomBytes(4).toString("hex");
      const t0 = Date.now() - 10 * 60_000;
      const all = churn(run, options.devices ?? 24, t0);
      const random = prng(seed);
      const forA = all.filter((s) => s.update.source === "armis" || s.update.source === "sweep");
      const forB = jitter(
        all.filter((s) => s.update.source !== "sweep"),
        8,
        random,
      );
      const p = await pair();
      pairs.push(p);
      const context = `seed ${seed}, run ${run}`;

      const [outA, outB] = await Promise.all([publishAll(p.a, forA, 6), publishAll(p.b, forB, 6)]);
      expect([...outA, ...outB], context).not.toContain("failed");
      // Both caches have caught up with each other's writes (the watch), so what follows reads a settled map.
      await until(
        "both caches synced",
        () => !!p.a.app.store.cache?.isSynced && !!p.b.app.store.cache?.isSynced,
        10_000,
      );
      await new Promise((r) => setTimeout(r, 200));

      const now = Date.now();
      const before = await snapshot(p.direct, p.a.config.namespace, now);
      expect(unexplained(before, `${name} after the concurrent run`), context).toEqual([]);

      // Republishing everything, in time order, moves no key: every key stays on its device, none
      // appears or disappears. The only writes it may make are device records dropping a stale
      // reverse-index entry (a key that moved to another device, e.g. the MAC; the old device's
      // index is cleaned the next time that device is written). After that the instances agree:
      // republishing again, on either of them, writes nothing at all.
      const owners = (snap: Awaited<ReturnType<typeof snapshot>>) =>
        [...snap.live.entries()].map(([k, v]) => `${k} -> ${v.binding.record.canonicalDeviceId}`).sort();
      const first = await publishAll(p.a, all, 25);
      expect(
        first.filter((o) => o !== "unchanged" && o !== "updated"),
        context,
      ).toEqual([]);
      const republished = await snapshot(p.direct, p.a.config.namespace, now);
      expect(owners(republished), context).toEqual(owners(before));
      for (const s of [p.b, p.a]) {
        const again = await publishAll(s, all, 25);
        expect(
          again.map((o, i) => (o === "unchanged" ? "" : `${label(all[i]!, i)} ${o}`)).filter(Boolean),
          context,
        ).toEqual([]);
      }
      expect(
        unexplained(await snapshot(p.direct, p.a.config.namespace, now), `${name} after republishing`),
        context,
      ).toEqual([]);
      await expectConsistent(p.direct, p.a.config.namespace, [p.a.app.devices, p.b.app.devices], context);

      const single = await memoryPair();
      pairs.push(single);
      await publishAll(single.a, all, 25);
      // Where order cannot matter, the devices are the same as one instance makes of the same updates in time order.
      const armis = all.filter((s) => s.update.metadata?.armis_device_id);
      const concurrent = await resolveAll(p.a, armis);
      const alone = await resolveAll(single.a, armis);
      const sightingName = (s: Sighting) => `${s.update.source}@${s.update.timestamp - t0}`;
      const truth = grouping(armis, sightingName, (s) => s.truth!);
      expect(
        grouping(armis, sightingName, (s) => concurrent[armis.indexOf(s)] ?? "?"),
        context,
      ).toEqual(truth);
      expect(
        grouping(armis, sightingName, (s) => alone[armis.indexOf(s)] ?? "?"),
        context,
      ).toEqual(truth);
      expect(concurrent.every((c) => c !== null)).toBe(true);
    }, 60_000);
  });
}
