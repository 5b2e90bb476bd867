import type { Sighting } from "./sources.js";

/** One publish result, as the REST front-end returns it. */
export interface PublishResultJson {
  readonly device_id: string;
  readonly canonical_device_id: string | null;
  readonly matched_by: string | null;
  readonly outcome: "created" | "updated" | "unchanged" | "rejected" | "failed";
  readonly tombstone?: { readonly device_id: string; readonly merged_into: string };
  readonly merged_device_ids?: readonly string[];
}

interface CanonStat {
  /** True device → asserting sightings that got this id. */
  readonly assert: Map<number, number>;
  /** True device → weak (sweep) sightings that got this id. */
  readonly weak: Map<number, number>;
  /** The tenures (`stayKey`) the weak sightings saw. */
  readonly weakStays: Set<string>;
}

/** A device's tenure at an address, as `Sighting.stay` names it. */
const stayKey = (s: { readonly device: number; readonly addressKey: string; readonly stay?: number }) =>
  `${s.device}|${s.addressKey}|${s.stay ?? -1}`;

export interface MergeExample {
  readonly canonical_device_id: string;
  readonly devices: readonly { readonly device: number; readonly asserting_sightings: number }[];
}

export interface TruthSummary {
  readonly devices_seen: number;
  readonly baseline_ids: number;
  readonly canonical_ids: number;
  /** Canonical ids whose asserting sightings come from one true device. */
  readonly strong_ids: number;
  /** Canonical ids that only sweeps (addresses) ever reached. */
  readonly weak_only_ids: number;
  /** Weak-only ids whose sightings belong to a device that also has a strong source. */
  readonly weak_ids_of_strong_devices: number;
  /**
   * Of those, the ids no rule could attribute without guessing: no asserting source ever reported the
   * device during any tenure at an address the sweeps saw it at (a DHCP lease held only between two of
   * its source's reports). Each is an id more than the devices that nothing in the data can remove.
   */
  readonly weak_ids_unattributable: number;
  /** True devices whose asserting sightings landed on two or more canonical ids, and the ids beyond one. */
  readonly split_devices: number;
  readonly split_extra_ids: number;
  /** Where the duplicates are, by the device's `class@partition`: extra ids of split devices, and sweep-only ids. */
  readonly duplicates_by_group: Readonly<Record<string, { split_extra_ids: number; sweep_only_ids: number }>>;
  readonly false_merges: number;
  readonly false_merge_examples: readonly MergeExample[];
  /** Asserting sightings that landed on a canonical id owned by another true device. */
  readonly misattributed_asserting: number;
  readonly misattributed_sweeps: number;
  readonly sweep_sightings: number;
  /** Ids that had been retired (tombstoned) and were later returned as canonical again. */
  readonly retired_ids_reused: number;
  readonly tombstones: number;
}

/**
 * Ground truth against the service's answers. Every result is filed under the canonical id it
 * named; tombstones link retired ids to the id they redirect to (a union-find), so a device merged
 * into another counts once, and a merge of two true devices shows up as a false merge.
 */
export class Ledger {
  readonly baseline = new Set<string>();
  private readonly seen: Uint8Array;
  private seenCount = 0;
  private readonly canon = new Map<string, CanonStat>();
  private readonly retired = new Set<string>();
  private readonly parent = new Map<string, string>();
  private retiredCanon = 0;
  private reusedRetired = 0;
  private tombstones = 0;
  /** The tenures (`stayKey`) some asserting source reported. */
  private readonly assertedStays = new Set<string>();
  /** Per device: the canonical id its latest asserting sighting got (any sighting, for sweep-only devices). */
  readonly lastCanon: (string | undefined)[];
  /** Per device and source: the canonical id that source's latest sighting of it got. */
  private readonly lastBySource = new Map<string, (string | undefined)[]>();
  /** Per device: `partition:ip` of that sighting, and its observation time. */
  readonly lastAddr: (string | undefined)[];
  readonly lastAddrAt: Float64Array;

  constructor(
    devices: number,
    private readonly weakOnly: (device: number) => boolean,
    private readonly groupOf: (device: number) => string,
  ) {
    this.seen = new Uint8Array(devices);
    this.lastCanon = new Array<string | undefined>(devices);
    this.lastAddr = new Array<string | undefined>(devices);
    this.lastAddrAt = new Float64Array(devices);
  }

  get devicesSeen(): number {
    return this.seenCount;
  }

  /** identity-map's device count: distinct canonical ids returned, less those since retired. */
  get deviceCount(): number {
    return this.canon.size - this.retiredCanon;
  }

  record(s: Sighting, r: PublishResultJson): void {
    if (!this.seen[s.device]) {
      this.seen[s.device] = 1;
      this.seenCount++;
    }
    this.baseline.add(s.addressKey);
    if (r.tombstone) this.retire(r.tombstone.device_id, r.tombstone.merged_into);
    for (const m of r.merged_device_ids ?? []) this.retire(m, r.canonical_device_id ?? m);
    const id = r.canonical_device_id;
    if (id === null || r.outcome === "failed" || r.outcome === "rejected") return;
    let stat = this.canon.get(id);
    if (!stat) {
      stat = { assert: new Map(), weak: new Map(), weakStays: new Set() };
      this.canon.set(id, stat);
      if (this.retired.has(id)) {
        this.retiredCanon++;
        this.reusedRetired++;
      }
    }
    const counts = s.asserting ? stat.assert : stat.weak;
    counts.set(s.device, (counts.get(s.device) ?? 0) + 1);
    if (s.asserting) this.assertedStays.add(stayKey(s));
    else stat.weakStays.add(stayKey(s));
    let bySource = this.lastBySource.get(s.source);
    if (!bySource) this.lastBySource.set(s.source, (bySource = new Array<string | undefined>(this.seen.length)));
    bySource[s.device] = id;
    if (s.asserting || this.weakOnly(s.device)) {
      this.lastCanon[s.device] = id;
      this.lastAddr[s.device] = s.addressKey;
      this.lastAddrAt[s.device] = s.update.timestamp as number;
    }
  }

  /** The id a (possibly retired) canonical id resolves to now. */
  root(id: string): string {
    let r = id;
    for (let p = this.parent.get(r); p !== undefined; p = this.parent.get(r)) r = p;
    // Path compression keeps later lookups short.
    for (let x = id, p = this.parent.get(x); p !== undefined && p !== r; x = p, p = this.parent.get(x))
      this.parent.set(x, r);
    return r;
  }

  /**
   * The canonical id a lookup should return now: the one the device's latest sighting from `source`
   * got (the source whose identifier is looked up), else its latest asserting sighting's.
   */
  expected(device: number, source?: string): string | undefined {
    const c = (source === undefined ? undefined : this.lastBySource.get(source)?.[device]) ?? this.lastCanon[device];
    return c === undefined ? undefined : this.root(c);
  }

  private retire(id: string, into: string): void {
    this.tombstones++;
    if (id !== into) {
      const a = this.root(id);
      const b = this.root(into);
      if (a !== b) this.parent.set(a, b);
    }
    if (this.retired.has(id) || id === into) return;
    this.retired.add(id);
    if (this.canon.has(id)) this.retiredCanon++;
  }

  summary(): TruthSummary {
    const groups = new Map<string, CanonStat>();
    for (const [id, stat] of this.canon) {
      const r = this.root(id);
      const g = groups.get(r) ?? {
        assert: new Map<number, number>(),
        weak: new Map<number, number>(),
        weakStays: new Set<string>(),
      };
      for (const [d, n] of stat.assert) g.assert.set(d, (g.assert.get(d) ?? 0) + n);
      for (const [d, n] of stat.weak) g.weak.set(d, (g.weak.get(d) ?? 0) + n);
      for (const k of stat.weakStays) g.weakStays.add(k);
      groups.set(r, g);
    }
    const idsPerDevice = new Map<number, number>();
    let strong = 0;
    let weakOnly = 0;
    let weakOfStrong = 0;
    let unattributable = 0;
    let falseMerges = 0;
    let misAsserting = 0;
    let misSweeps = 0;
    let sweeps = 0;
    const examples: MergeExample[] = [];
    const byGroup: Record<string, { split_extra_ids: number; sweep_only_ids: number }> = {};
    const bucket = (d: number) => (byGroup[this.groupOf(d)] ??= { split_extra_ids: 0, sweep_only_ids: 0 });
    for (const [id, g] of groups) {
      const owner = argmax(g.assert.size > 0 ? g.assert : g.weak);
      for (const [d, n] of g.weak) {
        sweeps += n;
        if (d !== owner) misSweeps += n;
      }
      if (g.assert.size === 0) {
        weakOnly++;
        if (!this.weakOnly(owner)) {
          weakOfStrong++;
          bucket(owner).sweep_only_ids++;
          const mine = `${owner}|`;
          const evidence = [...g.weakStays].some((k) => k.startsWith(mine) && this.assertedStays.has(k));
          if (!evidence) unattributable++;
        }
        continue;
      }
      strong++;
      for (const [d, n] of g.assert) {
        idsPerDevice.set(d, (idsPerDevice.get(d) ?? 0) + 1);
        if (d !== owner) misAsserting += n;
      }
      if (g.assert.size > 1) {
        falseMerges++;
        if (examples.length < 20) {
          examples.push({
            canonical_device_id: id,
            devices: [...g.assert]
              .sort((a, b) => b[1] - a[1])
              .map(([device, n]) => ({ device, asserting_sightings: n })),
          });
        }
      }
    }
    let split = 0;
    let extra = 0;
    for (const [d, n] of idsPerDevice) {
      if (n > 1) {
        split++;
        extra += n - 1;
        bucket(d).split_extra_ids += n - 1;
      }
    }
    return {
      devices_seen: this.seenCount,
      baseline_ids: this.baseline.size,
      canonical_ids: groups.size,
      strong_ids: strong,
      weak_only_ids: weakOnly,
      weak_ids_of_strong_devices: weakOfStrong,
      weak_ids_unattributable: unattributable,
      split_devices: split,
      split_extra_ids: extra,
      duplicates_by_group: byGroup,
      false_merges: falseMerges,
      false_merge_examples: examples,
      misattributed_asserting: misAsserting,
      misattributed_sweeps: misSweeps,
      sweep_sightings: sweeps,
      retired_ids_reused: this.reusedRetired,
      tombstones: this.tombstones,
    };
  }
}

function argmax(m: ReadonlyMap<number, number>): number {
  let best = -1;
  let bestN = -1;
  for (const [k, n] of m) {
    if (n > bestN || (n === bestN && k < best)) {
      best = k;
      bestN = n;
    }
  }
  return best;
}
