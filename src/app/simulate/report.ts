import type { DeviceClass } from "./fleet.js";
import type { KvCounters } from "./kv-cost.js";
import { judgeRate } from "./scale.js";
import type { Scenario } from "./scenario.js";
import type { SharedMacKind, SharedMacLookupStats } from "./shared-macs.js";
import type { BindingCensus } from "./target.js";
import type { TruthSummary } from "./truth.js";

export interface LookupKindStats {
  asked: number;
  hits: number;
  not_found: number;
  other_device: number;
  examples: {
    device: number;
    class: DeviceClass;
    key: { kind: string; value: string };
    expected: string;
    got: string | null;
  }[];
}
export interface LookupStats {
  readonly strongest: LookupKindStats;
  readonly address: LookupKindStats;
}

export interface Target {
  readonly name: string;
  readonly value: string;
  readonly target: string;
  readonly met: boolean;
  /** Why, when missed. */
  readonly note?: string;
  /** Met only because the fleet was too small to judge the rate (scale.ts). */
  readonly at_scale_only?: string;
}

export interface SimReport {
  readonly scenario: {
    readonly devices: number;
    readonly days: number;
    readonly seed: string;
    readonly start: string;
    readonly end: string;
    readonly service: string;
    readonly batch_size: number;
    readonly coverage: Readonly<Record<DeviceClass, number>>;
    readonly partitions: readonly {
      readonly name: string;
      readonly static_addresses: number;
      readonly pool: number;
      readonly lease_hours: number;
    }[];
    readonly cadences: Readonly<Record<string, number | string>>;
    readonly nic_swaps: number;
    /** Shared MACs in the fleet: hot-desk docks, USB dongles (and the MAC-only laptops sharing them), cloned VMs. */
    readonly shared_macs: {
      readonly docks: number;
      readonly dongles: number;
      readonly dongle_laptops: number;
      readonly cloned_vms: number;
    };
  };
  readonly timing: {
    readonly seconds: number;
    readonly updates: number;
    readonly updates_per_second: number;
    readonly lookups: number;
  };
  readonly devices: {
    /** Devices in the fleet, and those some source reported (duplicates count against these). */
    readonly fleet: number;
    readonly truth: number;
    readonly baseline: number;
    readonly identity_map: number;
    /** Devices the map holds at the end (live self-named device-id bindings); null with --url. */
    readonly identity_map_live: number | null;
    readonly baseline_duplicates: number;
    readonly duplicates: number;
    readonly reduction_pct: number;
    /**
     * The most a map without false merges could remove: every id `weak_ids_unattributable` counts is a
     * duplicate no evidence in the run can resolve.
     */
    readonly reduction_ceiling_pct: number;
  } & Omit<TruthSummary, "devices_seen" | "baseline_ids" | "canonical_ids">;
  readonly publish: {
    readonly updates: number;
    readonly outcomes: Readonly<Record<string, number>>;
    /** By source, then outcome: which source's updates change the map. */
    readonly by_source: Readonly<Record<string, Readonly<Record<string, number>>>>;
    readonly success_pct: number;
    readonly failed_requests: number;
    readonly retries: number;
  };
  readonly lookups: { readonly periodic: LookupStats; readonly final: LookupStats; readonly hit_rate_pct: number };
  /** Lookups by hot-desk dock and USB dongle MACs (periodic and at the end), against who held them. */
  readonly shared_mac_lookups: Readonly<Record<SharedMacKind, SharedMacLookupStats>>;
  readonly kv: {
    readonly unchanged: {
      readonly updates: number;
      readonly reads: number;
      readonly writes: number;
      readonly per_update: number;
    };
    readonly changed: {
      readonly updates: number;
      readonly reads: number;
      readonly writes: number;
      readonly per_update: number;
      readonly keys_plus_one_per_update: number;
    };
    readonly failed: { readonly updates: number; readonly reads: number; readonly writes: number };
    /** Every KV call the service made meanwhile (publish, lookups, compaction). */
    readonly all_kv_operations: number;
    /** Binding changes by `reason kind`, from the service's metrics: what the writes were for. */
    readonly binding_changes: Readonly<Record<string, number>>;
    /** CAS conflicts retried, rebinds refused, out-of-order reports, by reason. */
    readonly conflicts: Readonly<Record<string, number>>;
  };
  /** Provisional devices and shared MACs (ADR 0010), from the service's metrics. */
  readonly identity_rules: {
    readonly provisional_take_overs: number;
    readonly absorptions: number;
    readonly absorptions_refused: number;
    readonly quarantines: number;
  };
  readonly bindings:
    | ({
        readonly available: true;
        readonly live_identities: number;
        readonly live_identities_by_kind: Readonly<Record<string, number>>;
        /** Address keys of addresses left less than a TTL ago: bound until they expire, as designed. */
        readonly vacated_within_ttl: Readonly<Record<string, number>>;
        /** The difference once those are counted as live. */
        readonly difference_with_vacated_pct: number;
        readonly identity_bindings: number;
        readonly difference_pct: number;
      } & BindingCensus)
    | {
        readonly available: false;
        readonly reason: string;
        readonly live_identities: number;
        readonly live_identities_by_kind: Readonly<Record<string, number>>;
      };
  readonly targets: readonly Target[];
  readonly series: readonly {
    readonly hour: number;
    readonly truth: number;
    readonly baseline: number;
    readonly identity_map: number;
    /**
     * Sweep-only ids no asserting source could attribute so far (`weak_ids_unattributable`), every 24
     * hours (the ledger's summary is too dear for every hour). So far: a report still to come in a
     * tenure that has not ended may yet attribute one, so early in a run it overstates the floor.
     */
    readonly unattributable?: number;
  }[];
}

export interface ReportInput {
  readonly options: {
    readonly devices: number;
    readonly days: number;
    readonly seed: string;
    readonly batchSize: number;
  };
  readonly scenario: Scenario;
  readonly service: string;
  readonly startMs: number;
  readonly seconds: number;
  readonly updates: number;
  readonly outcomes: Readonly<Record<string, number>>;
  readonly outcomesBySource: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly failedRequests: number;
  readonly retries: number;
  readonly changedKeysPlusOne: number;
  readonly truth: TruthSummary;
  readonly lookups: { readonly periodic: LookupStats; readonly final: LookupStats };
  readonly sharedMacLookups: Readonly<Record<SharedMacKind, SharedMacLookupStats>>;
  readonly kv: KvCounters;
  readonly census: BindingCensus | null;
  /** By kind: what the map would hold with nothing stale. */
  readonly liveIdentities: Readonly<Record<string, number>>;
  /** Addresses left less than a TTL ago, by kind: their bindings live on until they expire. */
  readonly vacated: Readonly<Record<"partition-ip" | "ip", number>>;
  readonly series: SimReport["series"];
  readonly coverage: Readonly<Record<DeviceClass, number>>;
}

const round = (x: number, digits = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : 0);
const pct = (part: number, whole: number) => (whole === 0 ? 100 : (100 * part) / whole);

export function buildReport(i: ReportInput): SimReport {
  const t = i.truth;
  const { devices_seen, baseline_ids, canonical_ids, ...truthRest } = t;
  // Duplicates are counted against the devices some source saw: nobody can know the others.
  const truth = devices_seen;
  const baselineDup = baseline_ids - truth;
  const duplicates = canonical_ids - truth;
  const reduction = baselineDup <= 0 ? 100 : pct(baselineDup - duplicates, baselineDup);
  const ceiling = baselineDup <= 0 ? 100 : pct(baselineDup - t.weak_ids_unattributable, baselineDup);
  const failed = i.outcomes.failed ?? 0;
  const success = pct(i.updates - failed, i.updates);
  const allLookups = [i.lookups.periodic, i.lookups.final].flatMap((l) => [l.strongest, l.address]);
  const asked = allLookups.reduce((s, l) => s + l.asked, 0);
  const hits = allLookups.reduce((s, l) => s + l.hits, 0);
  const hitRate = pct(hits, asked);
  const ops = (o: string) => i.kv.ops[o] ?? { read: 0, write: 0 };
  const unchangedN = i.kv.updates.unchanged ?? 0;
  const changedN = (i.kv.updates.created ?? 0) + (i.kv.updates.updated ?? 0);
  const unchangedOps = ops("unchanged").read + ops("unchanged").write;
  const changedReads = ops("created").read + ops("updated").read;
  const changedWrites = ops("created").write + ops("updated").write;
  const unchangedPer = unchangedN === 0 ? 0 : unchangedOps / unchangedN;
  const changedPer = changedN === 0 ? 0 : (changedReads + changedWrites) / changedN;
  const changedClient = (i.outcomes.created ?? 0) + (i.outcomes.updated ?? 0);
  const keysPlusOne = changedClient === 0 ? 0 : i.changedKeysPlusOne / changedClient;
  const census = i.census;
  const liveIdentities = Object.values(i.liveIdentities).reduce((s, v) => s + v, 0);
  const identityBindings = census ? census.live - census.redirects : 0;
  const difference = census ? pct(identityBindings - liveIdentities, liveIdentities) : 0;
  const vacated = i.vacated["partition-ip"] + i.vacated.ip;
  const withinTtl = liveIdentities + vacated;
  const withinTtlDifference = census ? pct(identityBindings - withinTtl, withinTtl) : 0;
  // A run shorter than the TTL has not let any vacated address expire yet: judged against what may still be bound.
  const bindingsMet = Math.abs(difference) <= 10 || Math.abs(withinTtlDifference) <= 10;

  const shared = Object.values(i.sharedMacLookups);
  const sharedAsked = shared.reduce((a, x) => a + x.shared_asked, 0);
  const confident = shared.reduce((a, x) => a + x.confident, 0);
  const confidentOnce = shared.reduce((a, x) => a + x.confident_after_one_change, 0);
  const confidentOther = shared.reduce((a, x) => a + x.confident_other_device, 0);

  const dedup = judgeRate(Math.max(0, duplicates), Math.max(0, baselineDup), 99);
  const lookups = judgeRate(asked - hits, asked, 99);
  const targets: Target[] = [
    {
      name: "duplicates removed vs baseline",
      value: `${round(reduction, 2)} %`,
      target: ">= 99 %",
      met: dedup.met,
      ...(dedup.atScaleOnly ? { at_scale_only: dedup.atScaleOnly } : {}),
      ...(!dedup.met
        ? {
            note:
              `${duplicates} duplicates left: ${t.split_extra_ids} extra ids of ${t.split_devices} split ` +
              `devices, ${t.weak_ids_of_strong_devices} sweep-only ids of devices other sources know ` +
              `(${t.weak_ids_unattributable} of them at a tenure no asserting source reported: the most ` +
              `any rule without false merges could remove is ${round(ceiling, 2)} %)`,
          }
        : {}),
    },
    {
      name: "false merges",
      value: String(t.false_merges),
      target: "0",
      met: t.false_merges === 0,
      ...(t.false_merges > 0
        ? { note: `${t.misattributed_asserting} asserting sightings landed on another device's id` }
        : {}),
    },
    {
      name: "confident answers by shared dock/dongle MACs",
      value: `${confident} of ${sharedAsked}`,
      target: "0",
      met: confident === 0,
      ...(sharedAsked === 0 ? { at_scale_only: "no dock or dongle MAC had two holders in this run" } : {}),
      ...(confident > 0
        ? {
            note:
              `lookups by a MAC two or more devices were reported with in the week before: ${confidentOnce} ` +
              `of the confident answers came after a single change of holder the service did not see as one ` +
              `between evidently different devices (ADR 0022), ${confidentOther} named a device other than ` +
              `the last holder`,
          }
        : {}),
    },
    {
      name: "publish success",
      value: `${round(success, 3)} %`,
      target: "100 %",
      met: failed === 0,
      ...(failed > 0 ? { note: `${failed} updates failed (${i.failedRequests} requests)` } : {}),
    },
    {
      name: "lookup hit rate",
      value: `${round(hitRate, 2)} %`,
      target: ">= 99 %",
      met: lookups.met,
      ...(lookups.atScaleOnly ? { at_scale_only: lookups.atScaleOnly } : {}),
      ...(!lookups.met ? { note: `${asked - hits} of ${asked} lookups missed or named another device` } : {}),
    },
    {
      name: "KV ops per unchanged update",
      value: round(unchangedPer, 4).toString(),
      target: "<= 0.1",
      met: unchangedPer <= 0.1,
    },
    {
      name: "KV ops per changed update",
      value: `${round(changedPer, 2)} (keys+1: ${round(keysPlusOne, 2)})`,
      target: "<= keys+1",
      met: changedReads + changedWrites <= i.changedKeysPlusOne,
      ...(changedReads + changedWrites > i.changedKeysPlusOne
        ? { note: "on average a changed update cost more round trips than its keys plus one" }
        : {}),
    },
    census
      ? {
          name: "bindings vs live identities",
          value: `${identityBindings} vs ${liveIdentities} (${difference >= 0 ? "+" : ""}${round(difference, 1)} %)`,
          target: "within 10 %",
          met: bindingsMet,
          ...(bindingsMet && Math.abs(difference) > 10
            ? {
                at_scale_only:
                  `holds only over runs longer than the weak-key TTL: counting the ${vacated} address keys of ` +
                  `addresses left less than a TTL ago (bound until they expire, as designed), the difference is ` +
                  `${round(withinTtlDifference, 1)} %`,
              }
            : {}),
          ...(!bindingsMet
            ? {
                note:
                  `${census.devices - (i.liveIdentities["device-id"] ?? 0)} device ids beyond the devices seen ` +
                  `(split devices, sweep-only devices), ` +
                  `${vacated} address keys of addresses left less than a TTL ago (bound until they expire, as ` +
                  `designed; ` +
                  `counting them as live, the difference is ` +
                  `${round(pct(identityBindings - withinTtl, withinTtl), 1)} %)`,
              }
            : {}),
        }
      : {
          name: "bindings vs live identities",
          value: "not available with --url",
          target: "within 10 %",
          met: true,
          note: "needs the KV itself; run in-process",
        },
  ];

  const periodicAsked = i.lookups.periodic.strongest.asked + i.lookups.periodic.address.asked;
  const finalAsked = i.lookups.final.strongest.asked + i.lookups.final.address.asked;
  const c = i.scenario.cadences;
  return {
    scenario: {
      devices: i.options.devices,
      days: i.options.days,
      seed: i.options.seed,
      start: new Date(i.startMs).toISOString(),
      end: new Date(i.scenario.endMs).toISOString(),
      service: i.service,
      batch_size: i.options.batchSize,
      coverage: i.coverage,
      partitions: i.scenario.fleet.partitions.map((p) => ({
        name: p.plan.name,
        static_addresses: p.staticCount,
        pool: p.poolCount,
        lease_hours: p.plan.leaseMs / 3_600_000,
      })),
      cadences: {
        armis_hours: c.armisMs / 3_600_000,
        netbox_hours: `${c.netboxMinMs / 3_600_000}-${c.netboxMaxMs / 3_600_000}`,
        agent_minutes: `${c.agentMinMs / 60_000}-${c.agentMaxMs / 60_000}`,
        sweep: `hourly, each target every ${c.sweepRotation} h`,
      },
      nic_swaps: i.scenario.swaps.length,
      shared_macs: {
        docks: i.scenario.fleet.docks.length,
        dongles: i.scenario.fleet.dongles.length,
        dongle_laptops: i.scenario.fleet.dongles.reduce((a, d) => a + d.laptops.length, 0),
        cloned_vms: i.scenario.fleet.clones.length,
      },
    },
    timing: {
      seconds: round(i.seconds, 1),
      updates: i.updates,
      updates_per_second: Math.round(i.updates / Math.max(i.seconds, 0.001)),
      lookups: periodicAsked + finalAsked,
    },
    devices: {
      fleet: i.options.devices,
      truth,
      baseline: baseline_ids,
      identity_map: canonical_ids,
      identity_map_live: census ? census.devices : null,
      baseline_duplicates: baselineDup,
      duplicates,
      reduction_pct: round(reduction, 3),
      reduction_ceiling_pct: round(ceiling, 3),
      ...truthRest,
    },
    publish: {
      updates: i.updates,
      outcomes: i.outcomes,
      by_source: i.outcomesBySource,
      success_pct: round(success, 4),
      failed_requests: i.failedRequests,
      retries: i.retries,
    },
    lookups: { ...i.lookups, hit_rate_pct: round(hitRate, 3) },
    shared_mac_lookups: i.sharedMacLookups,
    kv: {
      unchanged: {
        updates: unchangedN,
        reads: ops("unchanged").read,
        writes: ops("unchanged").write,
        per_update: round(unchangedPer, 4),
      },
      changed: {
        updates: changedN,
        reads: changedReads,
        writes: changedWrites,
        per_update: round(changedPer, 3),
        keys_plus_one_per_update: round(keysPlusOne, 3),
      },
      failed: { updates: i.kv.updates.failed ?? 0, reads: ops("failed").read, writes: ops("failed").write },
      all_kv_operations: i.kv.allKvOps,
      binding_changes: i.kv.changes,
      conflicts: i.kv.conflicts,
    },
    identity_rules: {
      provisional_take_overs: i.kv.provisional.take_over ?? 0,
      absorptions: i.kv.provisional.absorbed ?? 0,
      absorptions_refused: i.kv.provisional.absorption_refused ?? 0,
      quarantines: i.kv.changes["quarantined mac"] ?? 0,
    },
    bindings: census
      ? {
          available: true,
          ...census,
          live_identities: liveIdentities,
          live_identities_by_kind: i.liveIdentities,
          vacated_within_ttl: i.vacated,
          difference_with_vacated_pct: round(pct(identityBindings - withinTtl, withinTtl), 2),
          identity_bindings: identityBindings,
          difference_pct: round(difference, 2),
        }
      : {
          available: false,
          reason: "counting bindings needs the KV itself; run without --url",
          live_identities: liveIdentities,
          live_identities_by_kind: i.liveIdentities,
        },
    targets,
    series: i.series,
  };
}

/** The numbers that must not depend on timing: same seed, same numbers. */
export function deterministicPart(r: SimReport): unknown {
  const { timing: _t, scenario, ...rest } = r;
  const { service: _s, start: _a, end: _b, ...scn } = scenario;
  return { scenario: scn, ...rest, timing: { updates: r.timing.updates, lookups: r.timing.lookups } };
}
