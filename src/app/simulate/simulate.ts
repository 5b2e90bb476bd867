import type { Finding } from "../check/consistency-check.js";
import { CLASSES, DEVICE_CLASSES, type Device, type DeviceClass } from "./fleet.js";
import { kvDelta, parseKvCounters } from "./kv-cost.js";
import { Prng } from "./prng.js";
import { buildReport, type LookupStats, type SimReport } from "./report.js";
import { Scenario } from "./scenario.js";
import { fileSharedLookup, newSharedMacStats, SharedMacTruth } from "./shared-macs.js";
import type { Sighting, SourceName } from "./sources.js";
import { InProcessTarget, RestTarget, type LookupJson, type SimTarget } from "./target.js";
import { Ledger, type PublishResultJson } from "./truth.js";

const HOUR = 3_600_000;

export interface SimulateOptions {
  readonly devices: number;
  readonly days: number;
  readonly seed: string;
  /** A running service; without it one is started in-process on embedded storage in a temp dir. */
  readonly url?: string;
  readonly token?: string;
  /** Updates per publish request (and lookups per batch lookup). */
  readonly batchSize?: number;
  /** In-process: a lookup pass every this many simulated hours (compaction runs daily, and at the end). */
  readonly lookupEveryHours?: number;
  /** Devices per periodic lookup pass. */
  readonly lookupSample?: number;
  /** Settings for the in-process service on top of the simulation's own. */
  readonly serviceEnv?: Readonly<Record<string, string>>;
  /** Simulated start; by default `days` before now, so the map's expiry lines up with real time at the end. */
  readonly startMs?: number;
  readonly onProgress?: (p: SimProgress) => void;
  /** Told what the consistency checker found at the end (in-process runs only). */
  readonly onCheck?: (findings: readonly Finding[]) => void;
}

export interface SimProgress {
  readonly tick: number;
  readonly ticks: number;
  readonly simMs: number;
  readonly updates: number;
  readonly elapsedMs: number;
  readonly truth: number;
  readonly baseline: number;
  readonly identityMap: number;
}

const SOURCE_BIT: Readonly<Record<SourceName, number>> = { armis: 1, netbox: 2, agent: 4, sweep: 8 };

/**
 * Drives a service through a simulated fleet: publishes every sighting over REST in delivery
 * order, files each answer against ground truth, looks devices up along the way, and reports how
 * the service's device count, lookups and KV cost compare with the truth and the naive baseline.
 */
export async function runSimulation(opts: SimulateOptions): Promise<SimReport> {
  const began = performance.now();
  const batchSize = opts.batchSize ?? 5000;
  const startMs = opts.startMs ?? Math.floor((Date.now() - opts.days * 24 * HOUR) / HOUR) * HOUR;
  const scenario = new Scenario({ devices: opts.devices, days: opts.days, seed: opts.seed, startMs });
  const devices = scenario.fleet.devices;
  const weakOnly = (d: number) => !hasAssertingSource(devices[d]!);
  const ledger = new Ledger(devices.length, weakOnly, (d) => `${devices[d]!.cls}@${scenario.partitionName(d)}`);
  const sourcesSeen = new Uint8Array(devices.length);
  const target: SimTarget = opts.url
    ? new RestTarget(opts.url, opts.token)
    : await InProcessTarget.start(startMs, opts.serviceEnv);
  const lookupRng = new Prng(`${opts.seed}:lookups`);
  const periodic = newLookupStats();
  const final = newLookupStats();
  const sharedTruth = new SharedMacTruth(scenario.fleet);
  const sharedLookups = newSharedMacStats();
  const outcomes: Record<string, number> = { created: 0, updated: 0, unchanged: 0, rejected: 0, failed: 0 };
  const bySource: Record<string, Record<string, number>> = {};
  let changedKeysPlusOne = 0;
  let updates = 0;
  let failedRequests = 0;
  const series: SimReport["series"][number][] = [];
  const ticksPerHour = Math.round(HOUR / scenario.tickMs);
  const lookupEvery = (opts.lookupEveryHours ?? 6) * ticksPerHour;

  const judge = async (list: readonly number[], stats: LookupStats, atMs: number) => {
    const asks: { device: number; kind: "strongest" | "address"; expected: string; lookup: LookupJson }[] = [];
    for (const d of list) {
      const latest = ledger.expected(d);
      if (latest === undefined) continue;
      const dev = devices[d]!;
      const { key, source } = strongestKey(dev, sourcesSeen[d]!, ledger.lastAddr[d]!);
      // By an identifier: the id that source's own sightings got (a split device answers per side).
      asks.push({
        device: d,
        kind: "strongest",
        expected: ledger.expected(d, source)!,
        lookup: { identity_keys: [key] },
      });
      const current = scenario.currentAddressKey(d);
      // By address: only where the device was last reported, recently enough for the binding to live.
      if (
        key.kind !== "partition-ip" &&
        current !== null &&
        current === ledger.lastAddr[d] &&
        atMs - ledger.lastAddrAt[d]! <= 12 * HOUR
      ) {
        asks.push({
          device: d,
          kind: "address",
          expected: latest,
          lookup: { identity_keys: [{ kind: "partition-ip", value: current }] },
        });
      }
    }
    for (let i = 0; i < asks.length; i += batchSize) {
      const chunk = asks.slice(i, i + batchSize);
      const results = await target.lookup(chunk.map((a) => a.lookup));
      chunk.forEach((a, j) => {
        const r = results[j]!;
        const s = stats[a.kind];
        s.asked++;
        const got = r.found && r.record ? ledger.root(r.record.canonical_device_id) : null;
        if (got === a.expected) s.hits++;
        else {
          if (got === null) s.not_found++;
          else s.other_device++;
          if (s.examples.length < 10) {
            s.examples.push({
              device: a.device,
              class: devices[a.device]!.cls,
              key: a.lookup.identity_keys[0]!,
              expected: a.expected,
              got,
            });
          }
        }
      });
    }
  };

  /** Every dock and dongle MAC reported so far, looked up by MAC: several holders should never give one answer. */
  const judgeShared = async (atMs: number) => {
    const macs = sharedTruth.reported();
    for (let i = 0; i < macs.length; i += batchSize) {
      const chunk = macs.slice(i, i + batchSize);
      const results = await target.lookup(chunk.map((value) => ({ identity_keys: [{ kind: "mac", value }] })));
      chunk.forEach((mac, j) => {
        const expected = (d: number) => ledger.expected(d, "armis");
        fileSharedLookup(sharedLookups, sharedTruth, mac, atMs, results[j]!, expected, (id) => ledger.root(id));
      });
    }
  };

  try {
    const before = parseKvCounters(await target.metrics());
    for (let tick = scenario.nextTick(); tick; tick = scenario.nextTick()) {
      target.setTime(tick.endMs);
      for (let i = 0; i < tick.sightings.length; i += batchSize) {
        const chunk = tick.sightings.slice(i, i + batchSize);
        let results: PublishResultJson[];
        try {
          results = await target.publish(chunk.map((s) => s.update));
        } catch (e) {
          failedRequests++;
          if (failedRequests === 1)
            process.emitWarning(`publish failed: ${e instanceof Error ? e.message : String(e)}`);
          results = chunk.map((s) => ({
            device_id: s.update.device_id ?? "",
            canonical_device_id: null,
            matched_by: null,
            outcome: "failed",
          }));
        }
        chunk.forEach((s: Sighting, j) => {
          const r = results[j]!;
          outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
          const src = (bySource[s.source] ??= {});
          src[r.outcome] = (src[r.outcome] ?? 0) + 1;
          if (r.outcome === "created" || r.outcome === "updated") changedKeysPlusOne += s.keys + 1;
          sourcesSeen[s.device]! |= SOURCE_BIT[s.source];
          ledger.record(s, r);
          sharedTruth.record(s);
        });
        updates += chunk.length;
      }
      const n = tick.index + 1;
      if (n % ticksPerHour === 0) {
        const hour = n / ticksPerHour;
        series.push({
          hour,
          truth: ledger.devicesSeen,
          baseline: ledger.baseline.size,
          identity_map: ledger.deviceCount,
          ...(hour % 24 === 0 ? { unattributable: ledger.summary().weak_ids_unattributable } : {}),
        });
      }
      if (target.simulatedClock && n % (24 * ticksPerHour) === 0 && n < scenario.ticks)
        await target.maintain(tick.endMs);
      if (target.simulatedClock && n % lookupEvery === 0 && n < scenario.ticks) {
        await judge(
          samplePublished(ledger, devices.length, opts.lookupSample ?? 2000, lookupRng),
          periodic,
          tick.endMs,
        );
        await judgeShared(tick.endMs);
      }
      opts.onProgress?.({
        tick: n,
        ticks: scenario.ticks,
        simMs: tick.endMs,
        updates,
        elapsedMs: performance.now() - began,
        truth: ledger.devicesSeen,
        baseline: ledger.baseline.size,
        identityMap: ledger.deviceCount,
      });
    }
    const endMs = scenario.endMs;
    target.setTime(endMs);
    await target.maintain(endMs);
    await judge(
      devices.map((d) => d.id),
      final,
      endMs,
    );
    await judgeShared(endMs);
    const after = parseKvCounters(await target.metrics());
    const census = await target.bindings(endMs);
    const findings = opts.onCheck ? await target.check(endMs) : null;
    if (findings) opts.onCheck?.(findings);
    return buildReport({
      options: { devices: opts.devices, days: opts.days, seed: opts.seed, batchSize },
      scenario,
      service: target.description,
      startMs,
      seconds: (performance.now() - began) / 1000,
      updates,
      outcomes,
      outcomesBySource: bySource,
      failedRequests,
      retries: target.retries,
      changedKeysPlusOne,
      truth: ledger.summary(),
      lookups: { periodic, final },
      sharedMacLookups: sharedLookups,
      kv: kvDelta(before, after),
      census,
      liveIdentities: liveIdentities(scenario, ledger, sourcesSeen, endMs),
      vacated: vacatedAddresses(scenario, ledger, endMs),
      series,
      coverage: coverage(devices),
    });
  } finally {
    await target.close();
  }
}

function hasAssertingSource(dev: Device): boolean {
  const p = CLASSES[dev.cls];
  return p.armis || p.netbox || p.agent;
}

/** The strongest identifier a user would look the device up by, among those published so far, and its source. */
function strongestKey(
  dev: Device,
  seen: number,
  lastAddr: string,
): { key: { kind: string; value: string }; source: SourceName } {
  if (seen & SOURCE_BIT.armis) return { key: { kind: "armis-id", value: dev.armisId }, source: "armis" };
  if (seen & SOURCE_BIT.netbox) return { key: { kind: "netbox-id", value: dev.netboxId }, source: "netbox" };
  if (seen & SOURCE_BIT.agent) return { key: { kind: "mac", value: dev.macs[0]! }, source: "agent" };
  return { key: { kind: "partition-ip", value: lastAddr }, source: "sweep" };
}

function samplePublished(ledger: Ledger, n: number, size: number, rng: Prng): number[] {
  const picked = new Set<number>();
  for (let tries = 0; picked.size < size && tries < size * 4; tries++) {
    const d = rng.int(n);
    if (ledger.lastCanon[d] !== undefined) picked.add(d);
  }
  return [...picked].sort((a, b) => a - b);
}

export function newLookupStats(): LookupStats {
  const one = () => ({ asked: 0, hits: 0, not_found: 0, other_device: 0, examples: [] });
  return { strongest: one(), address: one() };
}

/**
 * The keys the map should hold at the end if it held nothing stale: each device's id, its strong
 * identifiers as reported, its current MACs (when a source reports MACs), and the address it was
 * last reported at, if that is where it is and the report is recent.
 */
function liveIdentities(
  scenario: Scenario,
  ledger: Ledger,
  sourcesSeen: Uint8Array,
  endMs: number,
): Record<string, number> {
  let ids = 0;
  const armis = new Set<string>();
  const netbox = new Set<string>();
  const macs = new Set<string>();
  const pips = new Set<string>();
  const ips = new Set<string>();
  for (const dev of scenario.fleet.devices) {
    const seen = sourcesSeen[dev.id]!;
    if (seen === 0) continue;
    ids++;
    if (seen & SOURCE_BIT.armis) armis.add(dev.armisId);
    if (seen & SOURCE_BIT.netbox) netbox.add(dev.netboxId);
    const reportsMacs = seen & (SOURCE_BIT.armis | SOURCE_BIT.agent) || (seen & SOURCE_BIT.netbox && dev.netboxHasMac);
    if (reportsMacs) for (const m of dev.macs) macs.add(m);
    const current = scenario.currentAddressKey(dev.id);
    if (current !== null && current === ledger.lastAddr[dev.id] && endMs - ledger.lastAddrAt[dev.id]! <= 24 * HOUR) {
      pips.add(current);
      ips.add(current.slice(current.indexOf(":") + 1));
    }
  }
  return {
    "device-id": ids,
    "armis-id": armis.size,
    "netbox-id": netbox.size,
    mac: macs.size,
    "partition-ip": pips.size,
    ip: ips.size,
  };
}

/**
 * Addresses a device was last reported at less than a TTL ago but has left (moved or gone): no
 * source says so, so their bindings rightly live until they expire. Not live identities, but not
 * leaks either.
 */
function vacatedAddresses(scenario: Scenario, ledger: Ledger, endMs: number): { "partition-ip": number; ip: number } {
  const bare = (pip: string) => pip.slice(pip.indexOf(":") + 1);
  const current = new Set<string>();
  for (const dev of scenario.fleet.devices) {
    const c = scenario.currentAddressKey(dev.id);
    if (c !== null) current.add(c).add(bare(c));
  }
  const pips = new Set<string>();
  const ips = new Set<string>();
  for (const dev of scenario.fleet.devices) {
    const last = ledger.lastAddr[dev.id];
    if (last === undefined || endMs - ledger.lastAddrAt[dev.id]! > 24 * HOUR) continue;
    if (!current.has(last)) pips.add(last);
    if (!current.has(bare(last))) ips.add(bare(last));
  }
  return { "partition-ip": pips.size, ip: ips.size };
}

function coverage(devices: readonly Device[]): Record<DeviceClass, number> {
  const out = Object.fromEntries(DEVICE_CLASSES.map((c) => [c, 0])) as Record<DeviceClass, number>;
  for (const d of devices) out[d.cls]++;
  return out;
}
