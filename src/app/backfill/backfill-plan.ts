import type { DeviceRow } from "../../ports/device-store.js";
import { partitionIp, type DeviceUpdate } from "../../domain/device-update.js";
import type { IdentityKey } from "../../domain/identity-key.js";
import { isAddressDerived } from "../../domain/resolution.js";
import { claimedIps, identityFields, sightings } from "./backfill-sightings.js";

/** One historical device: its newest sighting, from a relational row or a line of `--from`. */
export interface Candidate extends Omit<DeviceRow, "canonicalDeviceId" | "firstSeenMs"> {
  /** False for an id only the `--from` file knows: the relational store gets a row for it. */
  readonly inStore: boolean;
}

/** An id the unit retires: published after the seed, so the map merges it into the seeded device. */
export interface Retiree {
  readonly candidate: Candidate;
  readonly update: DeviceUpdate;
}

/**
 * One piece of work. Phase 0: a group of sightings sharing a strong identity; 1: an address-named
 * device that is an alias of a strong device (the reference's IP alias pass); 2: a device known
 * only by its address. Units run in (partition, phase, id) order, which is also the resume position.
 */
export interface Unit {
  readonly partition: string;
  readonly phase: 0 | 1 | 2;
  readonly id: string;
  /** The key that ties the unit together: the group's strongest identifier, or the alias's address. */
  readonly key: IdentityKey;
  /** For an alias: the strong key of the device that claims the address (seeded by its own group). */
  readonly claimKey?: IdentityKey;
  /** Sightings of the canonical device, published first (none for an alias). */
  readonly seeds: readonly DeviceUpdate[];
  readonly canonical?: Candidate;
  readonly retire: readonly Retiree[];
}

export interface PlanOptions {
  readonly nowMs: number;
  /** Addresses older than this are not seeded: their bindings would be born expired. */
  readonly weakKeyTtlMs: number;
  /** Only units of these partitions; every partition when absent. */
  readonly partitions?: readonly string[];
  /** Seeding only: no alias units (an alias is nothing but a tombstone). */
  readonly seedKvOnly: boolean;
}

export interface Plan {
  readonly units: readonly Unit[];
  /** Partitions in processing order. */
  readonly partitions: readonly string[];
  readonly candidateRows: number;
  readonly duplicateGroups: number;
  /** Address-only devices last seen longer ago than the weak-key expiry: nothing to seed. */
  readonly tooOld: number;
  /** Rows merged into an id no candidate has: left alone. */
  readonly orphans: number;
}

type StrongKind = "armis-id" | "netbox-id" | "mac";
const STRONG: readonly StrongKind[] = ["armis-id", "netbox-id", "mac"];

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function strongIds(c: Candidate): { kind: StrongKind; value: string }[] {
  return [
    ...(c.armisId ? [{ kind: "armis-id" as const, value: c.armisId }] : []),
    ...c.netboxIds.map((value) => ({ kind: "netbox-id" as const, value })),
    ...c.macs.map((value) => ({ kind: "mac" as const, value })),
  ];
}

/**
 * The canonical-choice rule (docs/adr/0006-backfill-canonical-choice.md): a row not merged away
 * beats a merged one; then the newest sighting; then the smallest device id (code-unit order).
 */
export function compareForCanonical(a: Candidate, b: Candidate): number {
  return (
    Number(a.mergedInto !== null) - Number(b.mergedInto !== null) ||
    b.lastSeenMs - a.lastSeenMs ||
    cmp(a.deviceId, b.deviceId)
  );
}

/**
 * Groups candidates by strong identity and orders the work (pure: no I/O). Sightings are linked by
 * Armis id, then NetBox id, then MAC; a link that would put two different stronger identities in one
 * group is refused, as decide() refuses the merge. Rows the relational store already merged join
 * their survivor. Each strong identifier is seeded for one group only: the one with its newest sighting.
 */
export function planBackfill(candidates: readonly Candidate[], opts: PlanOptions): Plan {
  const n = candidates.length;
  const index = new Map(candidates.map((c, i) => [c.deviceId, i]));
  const parent = candidates.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  const ids = candidates.map((c) => ({
    armis: new Set(c.armisId ? [c.armisId] : []),
    netbox: new Set(c.netboxIds),
    macs: new Set(c.macs),
  }));
  const union = (a: number, b: number): number => {
    const [ra, rb] = [find(a), find(b)];
    if (ra === rb) return ra;
    const [keep, gone] = ra < rb ? [ra, rb] : [rb, ra];
    parent[gone] = keep;
    for (const f of ["armis", "netbox", "macs"] as const) for (const v of ids[gone]![f]) ids[keep]![f].add(v);
    return keep;
  };

  // Rows already merged join their survivor (following chains), whatever they carry.
  let orphans = 0;
  const orphaned = new Set<number>();
  candidates.forEach((c, i) => {
    if (c.mergedInto === null) return;
    let target = c.mergedInto;
    for (let hops = 0; hops < 32; hops++) {
      const t = candidates[index.get(target) ?? -1];
      if (!t || t.mergedInto === null || t.mergedInto === c.deviceId) break;
      target = t.mergedInto;
    }
    const j = index.get(target);
    if (j === undefined || j === i) {
      if (strongIds(c).length === 0) {
        orphans++;
        orphaned.add(i);
      }
      return;
    }
    union(i, j);
  });

  // Identity links, strongest kind first. Groups sharing a value fold into the one with the newest
  // sighting of it, unless a stronger identity differs.
  const carriers = new Map<string, number[]>();
  candidates.forEach((c, i) => {
    for (const k of strongIds(c)) {
      const id = `${k.kind}|${k.value}`;
      const list = carriers.get(id);
      if (list) list.push(i);
      else carriers.set(id, [i]);
    }
  });
  const byKind = (kind: StrongKind) => [...carriers.keys()].filter((k) => k.startsWith(`${kind}|`)).sort(cmp);
  const disjoint = (a: Set<string>, b: Set<string>) => a.size > 0 && b.size > 0 && ![...a].some((x) => b.has(x));
  for (const kind of STRONG) {
    for (const id of byKind(kind)) {
      const members = carriers.get(id)!;
      const newest = new Map<number, Candidate>();
      for (const i of members) {
        const r = find(i);
        const cur = newest.get(r);
        if (!cur || compareForCanonical(candidates[i]!, cur) < 0) newest.set(r, candidates[i]!);
      }
      const roots = [...newest.keys()].sort((a, b) => compareForCanonical(newest.get(a)!, newest.get(b)!));
      let acc = roots[0]!;
      for (const r of roots.slice(1)) {
        const [x, y] = [ids[find(acc)]!, ids[find(r)]!];
        const conflict =
          kind === "netbox-id"
            ? disjoint(x.armis, y.armis)
            : kind === "mac"
              ? disjoint(x.armis, y.armis) || disjoint(x.netbox, y.netbox)
              : false;
        if (!conflict) acc = union(acc, r);
      }
    }
  }

  // Groups, each with its canonical row.
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    if (orphaned.has(i)) continue;
    const r = find(i);
    const g = groups.get(r);
    if (g) g.push(i);
    else groups.set(r, [i]);
  }
  const ordered = [...groups.values()].map((g) => g.map((i) => candidates[i]!).sort(compareForCanonical));

  // Owner of each strong identifier: the group with its newest sighting (then the smaller canonical id).
  const owner = new Map<string, { group: Candidate[]; best: Candidate }>();
  for (const g of ordered) {
    for (const c of g) {
      for (const k of strongIds(c)) {
        const id = `${k.kind}|${k.value}`;
        const cur = owner.get(id);
        if (!cur || compareForCanonical(c, cur.best) < 0) owner.set(id, { group: g, best: c });
      }
    }
  }
  const owned = (g: Candidate[], c: Candidate) =>
    strongIds(c).filter((k) => owner.get(`${k.kind}|${k.value}`)?.group === g);

  const tooOld = (c: Candidate) => opts.nowMs - c.lastSeenMs >= opts.weakKeyTtlMs;
  const wanted = opts.partitions && opts.partitions.length > 0 ? new Set(opts.partitions) : undefined;
  const units: Unit[] = [];
  let candidateRows = 0;
  let duplicateGroups = 0;
  let old = 0;
  const counted = (p: string) => !wanted || wanted.has(p);
  for (const i of orphaned) if (counted(candidates[i]!.partition)) candidateRows++;

  // Phase 0: strong groups. Phase 2 (later): address-only devices. Remember claims for phase 1.
  const weak: Candidate[][] = [];
  const groupKey = new Map<Candidate, IdentityKey>();
  const single = new Set<Candidate>();
  for (const g of ordered) {
    const c = g[0]!;
    const strong = g.some((m) => strongIds(m).length > 0);
    if (!strong) {
      weak.push(g);
      continue;
    }
    const keys = [...owned(g, c), ...g.slice(1).flatMap((m) => owned(g, m))].sort(
      (a, b) => STRONG.indexOf(a.kind) - STRONG.indexOf(b.kind) || cmp(a.value, b.value),
    );
    const key: IdentityKey = keys[0] ?? { kind: "device-id", value: c.deviceId };
    groupKey.set(c, key);
    if (!counted(c.partition)) continue;
    candidateRows += g.length;
    if (g.length > 1) duplicateGroups++;
    else single.add(c);
    units.push({
      partition: c.partition,
      phase: 0,
      id: c.deviceId,
      key,
      seeds: sightings(c, owned(g, c), key, tooOld(c), true),
      canonical: c,
      retire: g.slice(1).map((m) => ({ candidate: m, update: sightings(m, owned(g, m), key, true, true)[0]! })),
    });
  }

  // Phase 1: address-named, address-only devices whose address a strong device claims (its ip,
  // `all_ips`, `alt_ip:<ip>` metadata). The newest claimant wins an address claimed twice.
  const claims = new Map<string, { claimant: Candidate; ip: string }>();
  for (const c of groupKey.keys()) {
    for (const ip of claimedIps(c)) {
      const target = partitionIp(c.partition, ip);
      if (target === c.deviceId) continue;
      const cur = claims.get(target);
      if (!cur || compareForCanonical(c, cur.claimant) < 0) claims.set(target, { claimant: c, ip });
    }
  }
  for (const g of weak) {
    const t = g[0]!;
    const claim =
      g.length === 1 && t.mergedInto === null && isAddressDerived(t.deviceId) ? claims.get(t.deviceId) : undefined;
    if (claim) {
      const { claimant, ip: address } = claim;
      if (!counted(claimant.partition)) continue;
      candidateRows++;
      // A device with an alias is a duplicate group too (the same one a rerun sees, merged).
      if (single.delete(claimant)) duplicateGroups++;
      if (opts.seedKvOnly) continue;
      const claimKey = groupKey.get(claimant)!;
      units.push({
        partition: claimant.partition,
        phase: 1,
        id: t.deviceId,
        key: { kind: "partition-ip", value: partitionIp(claimant.partition, address) },
        claimKey,
        seeds: [],
        retire: [
          {
            candidate: t,
            update: {
              device_id: t.deviceId,
              partition: claimant.partition,
              ...(tooOld(claimant) ? {} : { ip: address }),
              ...identityFields([claimKey]),
              // No source: an alias must not prune the addresses the claimant's own sources reported.
              timestamp: claimant.lastSeenMs,
            },
          },
        ],
      });
      continue;
    }
    const c = g[0]!;
    if (!counted(c.partition)) continue;
    candidateRows += g.length;
    if (c.mergedInto !== null) {
      orphans += g.length;
      continue;
    }
    if (tooOld(c)) {
      old += g.length;
      continue;
    }
    const key: IdentityKey = c.ip
      ? { kind: "partition-ip", value: partitionIp(c.partition, c.ip) }
      : { kind: "device-id", value: c.deviceId };
    units.push({
      partition: c.partition,
      phase: 2,
      id: c.deviceId,
      key,
      seeds: sightings(c, [], key, false, false),
      canonical: c,
      retire: g.slice(1).map((m) => ({
        candidate: m,
        update: {
          device_id: m.deviceId,
          partition: m.partition,
          ...(c.ip ? { ip: c.ip } : {}),
          timestamp: c.lastSeenMs,
        },
      })),
    });
  }

  units.sort(compareUnits);
  const partitions = [...new Set(units.map((u) => u.partition))].sort(cmp);
  return { units, partitions, candidateRows, duplicateGroups, tooOld: old, orphans };
}

export function compareUnits(
  a: Pick<Unit, "partition" | "phase" | "id">,
  b: Pick<Unit, "partition" | "phase" | "id">,
): number {
  return cmp(a.partition, b.partition) || a.phase - b.phase || cmp(a.id, b.id);
}
