import { beforeAll, describe, expect, it } from "vitest";
import { describeFinding, type Finding } from "../../src/app/check/consistency-check.js";
import { deterministicPart, type SimReport } from "../../src/app/simulate/report.js";
import { runSimulation, type SimulateOptions } from "../../src/app/simulate/simulate.js";

/** 1 500 devices over 2 simulated days, against an in-process service: well under a minute. */
const SMALL: SimulateOptions = { devices: 1500, days: 2, seed: "ci-1", startMs: Date.UTC(2026, 0, 5) };

describe("idmap simulate: a small fleet against ground truth", () => {
  let report: SimReport;
  let findings: readonly Finding[] | undefined;
  beforeAll(async () => {
    report = await runSimulation({ ...SMALL, onCheck: (f) => (findings = f) });
  }, 120_000);

  // Every device row, binding and audit row agrees. (Once 34 findings: address keys an index had
  // dropped, and rows of devices whose bindings had all expired, which the checker read as never bound.)
  it("leaves the map, the device rows and the audit trail in agreement (the consistency checker)", () => {
    expect(findings?.map(describeFinding)).toEqual([]);
  });

  it("merges no two true devices", () => {
    expect(report.devices.false_merges, JSON.stringify(report.devices.false_merge_examples)).toBe(0);
  });

  // The targets, at this size. Reported and missed: 99 % fewer duplicates than the baseline
  // (about 94 % here): sweep-only ids of laptops that held an address only between two reports of
  // their asserting source, so nothing ever asserts who was there (docs/benchmarks.md). The ledger
  // counts those (no asserting source reported the device in the tenure the sweep saw): they bound
  // what any map without false merges can remove (94.6 % here). Asserted: of the duplicates the data
  // allows removing, at least 99 % are removed; and at least 90 % of all (75 % before provisional devices).
  it("removes the naive baseline's duplicates: asserting sources almost never split a device", () => {
    const d = report.devices;
    const where = JSON.stringify(d.duplicates_by_group);
    expect(d.baseline_duplicates).toBeGreaterThan(0);
    expect(d.split_extra_ids / d.baseline_duplicates, where).toBeLessThan(0.01);
    expect((d.duplicates - d.weak_ids_unattributable) / d.baseline_duplicates, where).toBeLessThanOrEqual(0.01);
    expect(d.reduction_pct, where).toBeGreaterThanOrEqual(90);
    expect(d.reduction_ceiling_pct).toBeGreaterThanOrEqual(d.reduction_pct);
  });

  it("takes provisional devices over or absorbs them, and quarantines the hot desks' docks", () => {
    expect(report.identity_rules.provisional_take_overs).toBeGreaterThan(0);
    expect(report.identity_rules.absorptions).toBeGreaterThan(0);
    expect(report.identity_rules.quarantines).toBeGreaterThan(0);
  });

  // The target: a lookup by a shared dock or dongle MAC never names a device confidently when
  // several hold it (two or more laptops reported with the MAC in the week before). Met since a late
  // report of an earlier holder contests the MAC too (the last 5 of 487 here, ADR 0022): asserted.
  // Also: the dongle class is in the fleet and its MACs do change hands, the figure is measured for
  // docks and dongles, the quarantine answers ambiguity for both, and a MAC with a single holder still names it.
  it("measures lookups by shared dock and dongle MACs against who held them", () => {
    const fleet = report.scenario.shared_macs;
    expect(fleet.dongles).toBeGreaterThan(0);
    expect(fleet.dongle_laptops).toBeGreaterThan(fleet.dongles);
    const { dock, dongle } = report.shared_mac_lookups;
    for (const kind of [dock, dongle]) {
      expect(kind.shared_asked).toBeGreaterThan(0);
      expect(kind.confident + kind.ambiguous + kind.not_found).toBe(kind.shared_asked);
      expect(kind.ambiguous).toBeGreaterThan(0);
      expect(kind.single_confident).toBe(kind.single_asked);
    }
    const target = report.targets.find((t) => t.name === "confident answers by shared dock/dongle MACs");
    expect(dock.confident + dongle.confident, JSON.stringify([dock.examples, dongle.examples])).toBe(0);
    expect(target?.met).toBe(true);
  });

  it("attributes no more than 2 % of sweeps to the wrong device, and answers 99 % of lookups", () => {
    expect(report.devices.misattributed_sweeps / report.devices.sweep_sightings).toBeLessThanOrEqual(0.02);
    expect(report.lookups.hit_rate_pct).toBeGreaterThanOrEqual(99);
  });

  it("costs no KV operation for most unchanged updates, and at most keys plus one for a changed one", () => {
    expect(report.kv.unchanged.per_update).toBeLessThanOrEqual(0.1);
    expect(report.kv.changed.per_update).toBeLessThanOrEqual(report.kv.changed.keys_plus_one_per_update);
  });

  it("publishes every update", () => {
    expect(report.publish.outcomes.failed ?? 0).toBe(0);
    expect(report.publish.updates).toBeGreaterThan(SMALL.devices * 10);
  });

  it("gives the same numbers for the same seed", async () => {
    const again = await runSimulation(SMALL);
    expect(deterministicPart(again)).toEqual(deterministicPart(report));
  }, 120_000);
});
