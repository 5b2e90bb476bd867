import {
  CLASSES,
  churnOf,
  generateFleet,
  nextMac,
  slotAddress,
  type Device,
  type Fleet,
  type PartitionName,
  type PartitionSlots,
} from "./fleet.js";
import { Prng } from "./prng.js";
import { agentSighting, armisSighting, netboxSighting, sweepSighting, type Sighting, type Where } from "./sources.js";

const MIN = 60_000;
const HOUR = 60 * MIN;

/**
 * How often each source reports. The defaults keep a 50 000-device week to about 2.3 million
 * updates, a quarter of an hour or so on a 2-core machine.
 */
export interface Cadences {
  /** Each site's Armis sync: every device seen in the last day, at its last-seen time and address. */
  readonly armisMs: number;
  /** NetBox syncs every min..max (a fresh interval each time). */
  readonly netboxMinMs: number;
  readonly netboxMaxMs: number;
  /** Each agent reports every min..max. */
  readonly agentMinMs: number;
  readonly agentMaxMs: number;
  /** A sweep runs every hour on each site and covers 1/rotation of its targets. */
  readonly sweepRotation: number;
}

export const DEFAULT_CADENCES: Cadences = {
  armisMs: 6 * HOUR,
  netboxMinMs: 6 * HOUR,
  netboxMaxMs: 12 * HOUR,
  agentMinMs: 30 * MIN,
  agentMaxMs: 60 * MIN,
  sweepRotation: 8,
};

export interface ScenarioOptions {
  readonly devices: number;
  readonly days: number;
  readonly seed: string | number;
  /** Simulated time of the first tick (Unix ms). */
  readonly startMs: number;
  readonly tickMs?: number;
  readonly cadences?: Cadences;
  /** NIC swaps (a MAC moving from one Armis device to another) per device per day. */
  readonly swapRate?: number;
  /**
   * The switch-on phase: for this long the integrations have not reported yet and the sweeps cover
   * every address (what a registry sees on its first day). Default 4 h.
   */
  readonly switchOnMs?: number;
}

export interface Tick {
  readonly index: number;
  readonly startMs: number;
  readonly endMs: number;
  /** Delivered in this order: each source's batch stays together, batches in a random order. */
  readonly sightings: Sighting[];
}

/** Event kinds, in the order they apply within a tick: the world changes, then sources look. */
const Ev = { Churn: 0, Swap: 1, Agent: 2, Armis: 3, Netbox: 4, Sweep: 5 } as const;
type Ev = (typeof Ev)[keyof typeof Ev];
const EV_KINDS = 8;

interface FreeQueue {
  slot: number[];
  readyAt: number[];
  stamp: number[];
  head: number;
}

interface Site {
  readonly slots: PartitionSlots;
  readonly name: PartitionName;
  readonly occupant: Int32Array;
  readonly stamp: Int32Array;
  /** Last time an integration (not a sweep) reported the address: the sweep config's view. */
  readonly reportedAt: Float64Array;
  readonly free: FreeQueue;
}

/**
 * The world over simulated time: devices join and leave their networks, DHCP hands out and reuses
 * addresses, NICs are swapped, and each source reports what it can see on its own cadence. Pure
 * and seeded: the same options always produce the same ticks.
 */
export class Scenario {
  readonly fleet: Fleet;
  readonly tickMs: number;
  readonly ticks: number;
  readonly cadences: Cadences;
  readonly swaps: { readonly atTick: number; readonly from: number; readonly to: number; mac: string }[] = [];
  private readonly rng: Prng;
  private readonly sites: Site[];
  private readonly slot: Int32Array;
  private readonly lastSlot: Int32Array;
  private readonly slotSince: Float64Array;
  private readonly leftAt: Float64Array;
  private readonly buckets: number[][];
  private next = 0;

  constructor(readonly options: ScenarioOptions) {
    const root = new Prng(options.seed);
    this.fleet = generateFleet(options.devices, root.fork("fleet"));
    this.rng = root.fork("world");
    this.tickMs = options.tickMs ?? 5 * MIN;
    this.cadences = options.cadences ?? DEFAULT_CADENCES;
    this.ticks = Math.ceil((options.days * 24 * HOUR) / this.tickMs);
    this.buckets = Array.from({ length: this.ticks + 1 }, () => []);
    const n = this.fleet.devices.length;
    this.slot = new Int32Array(n).fill(-1);
    this.lastSlot = new Int32Array(n).fill(-1);
    this.slotSince = new Float64Array(n);
    this.leftAt = new Float64Array(n).fill(-Infinity);
    this.sites = this.fleet.partitions.map((slots) => {
      const size = slots.staticCount + slots.poolCount;
      const pool = Array.from({ length: slots.poolCount }, (_, i) => slots.staticCount + i);
      this.rng.shuffle(pool);
      return {
        slots,
        name: slots.plan.name as PartitionName,
        occupant: new Int32Array(size).fill(-1),
        stamp: new Int32Array(size),
        reportedAt: new Float64Array(size).fill(-Infinity),
        free: { slot: pool, readyAt: pool.map(() => -Infinity), stamp: pool.map(() => 0), head: 0 },
      };
    });
    this.populate();
  }

  get startMs(): number {
    return this.options.startMs;
  }

  get endMs(): number {
    return this.options.startMs + this.ticks * this.tickMs;
  }

  /** The next tick's deliveries, or null after the last one. */
  nextTick(): Tick | null {
    if (this.next >= this.ticks) return null;
    const index = this.next++;
    const startMs = this.options.startMs + index * this.tickMs;
    const endMs = startMs + this.tickMs;
    const events = this.buckets[index]!;
    this.buckets[index] = [];
    // World changes first (at the start of the tick), then what the sources see of it.
    events.sort((a, b) => (a % EV_KINDS) - (b % EV_KINDS) || a - b);
    const batches: Sighting[][] = [];
    const agents: Sighting[] = [];
    for (const e of events) {
      const kind = e % EV_KINDS;
      const arg = (e - kind) / EV_KINDS;
      switch (kind) {
        case Ev.Churn:
          this.churn(arg, startMs);
          break;
        case Ev.Swap:
          this.swap(arg);
          break;
        case Ev.Agent:
          this.agentReport(arg, startMs, agents);
          break;
        case Ev.Armis:
          batches.push(this.armisSync(arg, startMs, endMs));
          break;
        case Ev.Netbox:
          batches.push(this.netboxSync(arg, startMs));
          break;
        case Ev.Sweep:
          batches.push(this.sweep(arg, startMs));
          break;
      }
    }
    agents.sort((a, b) => (a.update.timestamp as number) - (b.update.timestamp as number));
    batches.push(agents);
    this.rng.shuffle(batches);
    return { index, startMs, endMs, sightings: batches.flat() };
  }

  /** Where the device is now (`partition:ip`), or null while it is off the network. */
  currentAddressKey(d: number): string | null {
    const dev = this.fleet.devices[d]!;
    const s = dev.dhcp ? this.slot[d]! : dev.staticSlot;
    if (s < 0) return null;
    const site = this.sites[dev.partition]!;
    return `${site.name}:${slotAddress(site.slots, s)}`;
  }

  partitionName(d: number): PartitionName {
    return this.sites[this.fleet.devices[d]!.partition]!.name;
  }

  // --- the world -----------------------------------------------------------------------------

  /** When the integrations first report: sweeps alone before it. */
  get switchedOnMs(): number {
    return this.options.startMs + (this.options.switchOnMs ?? 4 * HOUR);
  }

  /** The dock a hot-desk laptop uses in the shift of `t`: a different desk each shift, one laptop per desk. */
  private dockOf(dev: Device, t: number): string {
    if (dev.hotDesk < 0) return "";
    const docks = this.fleet.docks;
    const shift = Math.floor((t - this.options.startMs) / (12 * HOUR));
    return docks[(dev.hotDesk + shift * 7) % docks.length]!;
  }

  /**
   * The dongle a MAC-only laptop has in the shift of `t`: each dongle stays with one laptop of its
   * group for a 12 h shift, then passes to the next (the others are on Wi-Fi meanwhile).
   */
  private dongleOf(dev: Device, t: number): string {
    if (dev.dongle < 0) return "";
    const dongle = this.fleet.dongles[dev.dongle]!;
    const shift = Math.floor((t - this.options.startMs) / (12 * HOUR));
    return dongle.laptops[(shift + dev.dongle) % dongle.laptops.length] === dev.id ? dongle.mac : "";
  }

  private populate(): void {
    const start = this.options.startMs;
    const on = this.switchedOnMs;
    const c = this.cadences;
    for (const dev of this.fleet.devices) {
      const site = this.sites[dev.partition]!;
      if (!dev.dhcp) site.occupant[dev.staticSlot] = dev.id;
      const churn = churnOf(dev.cls, site.name);
      if (churn) {
        const present = this.rng.chance(churn.presentMeanMs / (churn.presentMeanMs + churn.awayMeanMs));
        if (present) this.allocate(dev.id, start);
        this.at(start + this.rng.exp(present ? churn.presentMeanMs : churn.awayMeanMs), Ev.Churn, dev.id);
      }
      if (dev.agentId) this.at(on + this.rng.between(0, c.agentMaxMs), Ev.Agent, dev.id);
    }
    this.sites.forEach((_, p) => {
      for (let t = on + this.rng.between(0, c.armisMs); t < this.endMs; t += c.armisMs) this.at(t, Ev.Armis, p);
      for (
        let t = on + this.rng.between(0, c.netboxMinMs);
        t < this.endMs;
        t += this.rng.between(c.netboxMinMs, c.netboxMaxMs)
      )
        this.at(t, Ev.Netbox, p);
      for (let t = start + this.rng.between(0, HOUR); t < this.endMs; t += HOUR) this.at(t, Ev.Sweep, p);
    });
    const movable = this.fleet.devices.filter((d) => d.dhcp && CLASSES[d.cls].armis).map((d) => d.id);
    const swaps = Math.max(
      1,
      Math.round(this.fleet.devices.length * (this.options.swapRate ?? 0.0003) * this.options.days),
    );
    for (let k = 0; k < swaps && movable.length > 1; k++) {
      const from = this.rng.pick(movable);
      const peers = movable.filter(
        (d) => d !== from && this.fleet.devices[d]!.partition === this.fleet.devices[from]!.partition,
      );
      if (peers.length === 0) continue;
      const atTick = Math.floor(this.rng.between(0.1, 0.9) * this.ticks);
      this.swaps.push({ atTick, from, to: this.rng.pick(peers), mac: "" });
      this.buckets[atTick]!.push(Ev.Swap + EV_KINDS * (this.swaps.length - 1));
    }
  }

  private at(t: number, kind: Ev, arg: number): void {
    const tick = Math.floor((t - this.options.startMs) / this.tickMs);
    if (tick >= 0 && tick < this.ticks) this.buckets[tick]!.push(kind + EV_KINDS * arg);
  }

  /** A device leaves its network (its lease stays reserved) or comes back (same address or a new one). */
  private churn(d: number, t: number): void {
    const dev = this.fleet.devices[d]!;
    const site = this.sites[dev.partition]!;
    const churn = churnOf(dev.cls, site.name)!;
    const s = this.slot[d]!;
    if (s >= 0) {
      site.occupant[s] = -1;
      const q = site.free;
      q.slot.push(s);
      q.readyAt.push(t + site.slots.plan.leaseMs);
      q.stamp.push(site.stamp[s]!);
      this.lastSlot[d] = s;
      this.leftAt[d] = t;
      this.slot[d] = -1;
      this.at(t + Math.max(10 * MIN, this.rng.exp(churn.awayMeanMs)), Ev.Churn, d);
    } else {
      this.allocate(d, t);
      this.at(t + Math.max(20 * MIN, this.rng.exp(churn.presentMeanMs)), Ev.Churn, d);
    }
  }

  /** DHCP: the old lease if it is still held for the device, else the address free the longest. */
  private allocate(d: number, t: number): void {
    const dev = this.fleet.devices[d]!;
    const site = this.sites[dev.partition]!;
    const churn = churnOf(dev.cls, site.name)!;
    const last = this.lastSlot[d]!;
    let s = -1;
    if (
      last >= 0 &&
      site.occupant[last]! < 0 &&
      t - this.leftAt[d]! < site.slots.plan.leaseMs &&
      this.rng.chance(churn.keepAddress)
    )
      s = last;
    const q = site.free;
    while (s < 0 && q.head < q.slot.length) {
      const c = q.slot[q.head]!;
      if (q.stamp[q.head] !== site.stamp[c] || site.occupant[c]! >= 0) {
        q.head++;
        continue;
      }
      if (q.readyAt[q.head]! > t) break;
      q.head++;
      s = c;
    }
    if (s < 0) s = this.anyFreePoolSlot(site);
    site.occupant[s] = d;
    site.stamp[s]!++;
    this.slot[d] = s;
    this.slotSince[d] = t;
    if (q.head > 65_536) {
      for (const k of ["slot", "readyAt", "stamp"] as const) q[k] = q[k].slice(q.head);
      q.head = 0;
    }
  }

  private anyFreePoolSlot(site: Site): number {
    const { staticCount, poolCount } = site.slots;
    const from = this.rng.int(poolCount);
    for (let i = 0; i < poolCount; i++) {
      const s = staticCount + ((from + i) % poolCount);
      if (site.occupant[s]! < 0) return s;
    }
    throw new Error(`DHCP pool of ${site.name} exhausted`);
  }

  /** A NIC swap: the first MAC of one device moves to another, which loses its own; the donor gets a new NIC. */
  private swap(k: number): void {
    const sw = this.swaps[k]!;
    const from = this.fleet.devices[sw.from]!;
    const to = this.fleet.devices[sw.to]!;
    sw.mac = from.macs[0]!;
    to.macs[0] = sw.mac;
    from.macs[0] = nextMac(this.fleet, CLASSES[from.cls].oui);
  }

  // --- the sources ---------------------------------------------------------------------------

  private agentReport(d: number, t0: number, out: Sighting[]): void {
    const c = this.cadences;
    this.at(t0 + this.rng.between(c.agentMinMs, c.agentMaxMs), Ev.Agent, d);
    const s = this.slot[d]!;
    if (s < 0) return; // off the network: nothing to report
    const dev = this.fleet.devices[d]!;
    const t = Math.round(t0 + this.rng.between(0, this.tickMs));
    out.push(agentSighting(dev, this.address(dev, s, t), t - this.slotSince[d]!, this.dockOf(dev, t)));
  }

  /** Armis lists every device it saw in the last day: where and when it was last seen. */
  private armisSync(p: number, t0: number, t1: number): Sighting[] {
    const out: Sighting[] = [];
    for (const dev of this.fleet.devices) {
      if (dev.partition !== p || !CLASSES[dev.cls].armis) continue;
      let s = dev.dhcp ? this.slot[dev.id]! : dev.staticSlot;
      let t: number;
      if (s >= 0) {
        t = Math.round(
          Math.max(t1 - this.rng.between(0, 30 * MIN), dev.dhcp ? this.slotSince[dev.id]! : -Infinity, t0),
        );
      } else {
        s = this.lastSlot[dev.id]!;
        t = this.leftAt[dev.id]!;
        if (s < 0 || t < t1 - 24 * HOUR) continue;
      }
      out.push(armisSighting(dev, this.address(dev, s, t), this.rng, this.dockOf(dev, t), this.dongleOf(dev, t)));
    }
    return this.rng.shuffle(out);
  }

  /** NetBox, the source of truth for static addresses, lists its devices as they are documented. */
  private netboxSync(p: number, t0: number): Sighting[] {
    const out: Sighting[] = [];
    for (const dev of this.fleet.devices) {
      if (dev.partition !== p || !CLASSES[dev.cls].netbox) continue;
      const t = Math.round(t0 + this.rng.between(0, this.tickMs));
      out.push(netboxSighting(dev, this.address(dev, dev.staticSlot, t)));
    }
    return this.rng.shuffle(out);
  }

  /**
   * The hourly sweep of a site: its targets are the static range and every address an integration
   * reported in the last day (how the sync job builds sweep configs); a target answers when a device
   * holds the address.
   */
  private sweep(p: number, t0: number): Sighting[] {
    const site = this.sites[p]!;
    const rotation = this.cadences.sweepRotation;
    const turn = Math.floor((t0 - this.options.startMs) / HOUR) % rotation;
    const since = t0 - 24 * HOUR;
    // Before the integrations report, a sweep covers every address: nothing tells it which are in use.
    const everything = t0 < this.switchedOnMs;
    const out: Sighting[] = [];
    const size = site.occupant.length;
    for (let s = 0; s < size; s++) {
      if ((Math.imul(s, 0x9e3779b1) >>> 0) % rotation !== turn) continue;
      if (!everything && s >= site.slots.staticCount && site.reportedAt[s]! < since) continue;
      const d = site.occupant[s]!;
      if (d < 0 || !this.rng.chance(0.97)) continue;
      const t = Math.round(t0 + this.rng.between(0, this.tickMs));
      out.push(sweepSighting(d, { ip: slotAddress(site.slots, s), partition: site.name, t, stay: this.stayOf(d) }));
    }
    return this.rng.shuffle(out);
  }

  /** Where a source sees the device, noted for the sweep config. */
  private address(dev: Device, s: number, t: number): Where {
    const site = this.sites[dev.partition]!;
    if (site.reportedAt[s]! < t) site.reportedAt[s] = t;
    return { ip: slotAddress(site.slots, s), partition: site.name, t, stay: this.stayOf(dev.id) };
  }

  /** The device's current (or, once it left, last) tenure at a DHCP address: when it began; -1 for a static address. */
  private stayOf(d: number): number {
    return this.fleet.devices[d]!.dhcp ? this.slotSince[d]! : -1;
  }
}
