import type { Fleet } from "./fleet.js";
import type { Sighting } from "./sources.js";
import type { LookupResultJson } from "./target.js";

const WEEK = 7 * 24 * 3_600_000;

export type SharedMacKind = "dock" | "dongle";

/** Lookups by the MACs devices take turns with (hot-desk docks, USB dongles), judged against who held them. */
export interface SharedMacLookupStats {
  /** Lookups by a MAC that two or more true devices were reported with in the week before. */
  shared_asked: number;
  /** The target is 0: such a lookup should never name one device confidently. */
  confident: number;
  /** Of those, after a single change of holder in the week (a NIC moved once looks the same). */
  confident_after_one_change: number;
  /** Of those, naming a device other than the one last reported with the MAC. */
  confident_other_device: number;
  ambiguous: number;
  not_found: number;
  /** Lookups by such a MAC with one holder so far, and how many named it. */
  single_asked: number;
  single_confident: number;
  examples: { mac: string; holders: number; changes: number; got: string | null; ambiguous: boolean }[];
}

export function newSharedMacStats(): Record<SharedMacKind, SharedMacLookupStats> {
  const one = (): SharedMacLookupStats => ({
    shared_asked: 0,
    confident: 0,
    confident_after_one_change: 0,
    confident_other_device: 0,
    ambiguous: 0,
    not_found: 0,
    single_asked: 0,
    single_confident: 0,
    examples: [],
  });
  return { dock: one(), dongle: one() };
}

/**
 * Ground truth for "several devices hold it": which true devices were reported with each dock or
 * dongle MAC and when. Changes of holder are counted in observation-time order, not delivery order:
 * Armis reports a device that left at its old time, after others reported the MAC since.
 */
export class SharedMacTruth {
  readonly kind = new Map<string, SharedMacKind>();
  private readonly reports = new Map<string, { t: number; device: number }[]>();

  constructor(fleet: Fleet) {
    for (const m of fleet.docks) this.kind.set(m, "dock");
    for (const d of fleet.dongles) this.kind.set(d.mac, "dongle");
  }

  record(s: Sighting): void {
    const mac = s.sharedMac;
    if (mac === undefined) return;
    const list = this.reports.get(mac) ?? [];
    const t = s.update.timestamp as number;
    const last = list[list.length - 1];
    // Consecutive reports of one holder add nothing.
    if (last && last.device === s.device && last.t <= t) last.t = t;
    else list.push({ t, device: s.device });
    this.reports.set(mac, list);
  }

  /** MACs some device was reported with so far. */
  reported(): string[] {
    return [...this.reports.keys()];
  }

  /** The week before `atMs`: distinct holders, changes of holder, and the latest holder. */
  window(mac: string, atMs: number): { holders: number; changes: number; latest: number | undefined } {
    const inWeek = (this.reports.get(mac) ?? []).filter((r) => r.t > atMs - WEEK).sort((a, b) => a.t - b.t);
    let changes = 0;
    for (let i = 1; i < inWeek.length; i++) if (inWeek[i]!.device !== inWeek[i - 1]!.device) changes++;
    return { holders: new Set(inWeek.map((r) => r.device)).size, changes, latest: inWeek[inWeek.length - 1]?.device };
  }
}

/**
 * Files one lookup by a dock or dongle MAC. `expectedOf` gives the canonical id the latest holder
 * should have; `root` follows tombstones.
 */
export function fileSharedLookup(
  stats: Record<SharedMacKind, SharedMacLookupStats>,
  truth: SharedMacTruth,
  mac: string,
  atMs: number,
  r: LookupResultJson,
  expectedOf: (device: number) => string | undefined,
  root: (id: string) => string,
): void {
  const s = stats[truth.kind.get(mac)!];
  const { holders, changes, latest } = truth.window(mac, atMs);
  const got = r.found && r.record ? root(r.record.canonical_device_id) : null;
  if (holders < 2) {
    s.single_asked++;
    if (got !== null) s.single_confident++;
    return;
  }
  s.shared_asked++;
  if (got === null) {
    if (r.ambiguous) s.ambiguous++;
    else s.not_found++;
    return;
  }
  s.confident++;
  if (changes <= 1) s.confident_after_one_change++;
  if (latest === undefined || expectedOf(latest) !== got) s.confident_other_device++;
  if (s.examples.length < 10) s.examples.push({ mac, holders, changes, got, ambiguous: false });
}
