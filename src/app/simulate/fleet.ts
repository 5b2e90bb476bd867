import type { Prng } from "./prng.js";

const HOUR = 3_600_000;

/**
 * Sites and their address plans. `hq` and `branch` hand out DHCP leases from the same range
 * (overlapping RFC 1918 space, the reason partitions exist), so the bare `ip` key is shared between
 * them; `campus` is a busy guest network with a tight pool and short leases, so addresses are reused
 * within hours.
 */
export interface PartitionPlan {
  readonly name: string;
  /** First address of the static range (servers, printers, routers). */
  readonly staticNet: number;
  /** First address of the DHCP pool. */
  readonly poolNet: number;
  /** Pool addresses per DHCP device: a large pool cycles a device through many addresses. */
  readonly poolFactor: number;
  readonly leaseMs: number;
}

export const PARTITIONS: readonly PartitionPlan[] = [
  { name: "hq", staticNet: ipv4("10.0.0.0"), poolNet: ipv4("10.16.0.0"), poolFactor: 3, leaseMs: 24 * HOUR },
  { name: "branch", staticNet: ipv4("10.1.0.0"), poolNet: ipv4("10.16.0.0"), poolFactor: 2, leaseMs: 8 * HOUR },
  { name: "campus", staticNet: ipv4("172.16.0.0"), poolNet: ipv4("172.20.0.0"), poolFactor: 1.3, leaseMs: 2 * HOUR },
  { name: "dc", staticNet: ipv4("10.200.0.0"), poolNet: ipv4("10.210.0.0"), poolFactor: 2, leaseMs: 24 * HOUR },
];
export type PartitionName = "hq" | "branch" | "campus" | "dc";

export const DEVICE_CLASSES = ["laptop", "agent", "workstation", "server", "managed", "printer", "router"] as const;
export type DeviceClass = (typeof DEVICE_CLASSES)[number];

/** How a class moves: time on the network, time away, and the chance of getting the old lease back. */
export interface Churn {
  readonly presentMeanMs: number;
  readonly awayMeanMs: number;
  readonly keepAddress: number;
}

export interface ClassProfile {
  readonly share: number;
  /** Which sources know the class: the identity coverage mix. */
  readonly armis: boolean;
  readonly netbox: boolean;
  readonly agent: boolean;
  readonly churn: Churn | null;
  readonly partitions: Readonly<Partial<Record<PartitionName, number>>>;
  readonly oui: string;
  readonly hostPrefix: string;
}

const office: Churn = { presentMeanMs: 10 * HOUR, awayMeanMs: 14 * HOUR, keepAddress: 0.6 };

/**
 * The coverage mix: Armis only (laptops, phones), agents only (MAC + stable id), Armis and agent,
 * NetBox only (servers), Armis and NetBox, sweeps only (printers), and routers whose MAC lists carry
 * a VRRP or HSRP virtual MAC shared with their peer.
 */
export const CLASSES: Readonly<Record<DeviceClass, ClassProfile>> = {
  laptop: {
    share: 0.44,
    armis: true,
    netbox: false,
    agent: false,
    churn: office,
    partitions: { hq: 0.45, branch: 0.25, campus: 0.3 },
    oui: "3C:22:FB",
    hostPrefix: "lt",
  },
  agent: {
    share: 0.06,
    armis: false,
    netbox: false,
    agent: true,
    churn: { presentMeanMs: 48 * HOUR, awayMeanMs: 1 * HOUR, keepAddress: 0.8 },
    partitions: { hq: 0.4, branch: 0.2, dc: 0.4 },
    oui: "00:50:56",
    hostPrefix: "vm",
  },
  workstation: {
    share: 0.04,
    armis: true,
    netbox: false,
    agent: true,
    churn: { ...office, presentMeanMs: 9 * HOUR, awayMeanMs: 15 * HOUR },
    partitions: { hq: 0.6, branch: 0.4 },
    oui: "F0:18:98",
    hostPrefix: "ws",
  },
  server: {
    share: 0.12,
    armis: false,
    netbox: true,
    agent: false,
    churn: null,
    partitions: { dc: 0.7, hq: 0.2, branch: 0.1 },
    oui: "B0:26:28",
    hostPrefix: "srv",
  },
  managed: {
    share: 0.16,
    armis: true,
    netbox: true,
    agent: false,
    churn: null,
    partitions: { dc: 0.5, hq: 0.3, branch: 0.2 },
    oui: "D0:94:66",
    hostPrefix: "app",
  },
  printer: {
    share: 0.17,
    armis: false,
    netbox: false,
    agent: false,
    churn: null,
    partitions: { hq: 0.5, branch: 0.4, campus: 0.1 },
    oui: "00:1B:A9",
    hostPrefix: "prn",
  },
  router: {
    share: 0.01,
    armis: true,
    netbox: true,
    agent: false,
    churn: null,
    partitions: { hq: 0.3, branch: 0.3, campus: 0.1, dc: 0.3 },
    oui: "00:1E:BD",
    hostPrefix: "rtr",
  },
};

/** Guest-network devices come and go faster than office ones, whatever their class. */
export function churnOf(cls: DeviceClass, partition: PartitionName): Churn | null {
  const c = CLASSES[cls].churn;
  if (!c) return null;
  if (partition === "campus") return { presentMeanMs: 3 * HOUR, awayMeanMs: 6 * HOUR, keepAddress: 0.3 };
  return c;
}

export interface Device {
  readonly id: number;
  readonly cls: DeviceClass;
  readonly partition: number;
  readonly dhcp: boolean;
  /** Slot of its static address; -1 for DHCP devices. */
  readonly staticSlot: number;
  readonly armisId: string;
  readonly netboxId: string;
  readonly agentId: string;
  readonly hostname: string;
  /** Current hardware MACs; a NIC swap changes them. */
  macs: string[];
  /** Routers: the VRRP/HSRP MAC shared with the peer router ("" otherwise). */
  readonly virtualMac: string;
  /** NetBox documents the device's interfaces (MACs) for some devices only. */
  readonly netboxHasMac: boolean;
  /** A hot-desk laptop: its index among them (it docks at a different desk each day), else -1. */
  readonly hotDesk: number;
  /** A laptop with no wired NIC of its own: the USB Ethernet dongle it shares (index in `dongles`), else -1. */
  dongle: number;
}

/** A USB Ethernet dongle passed around a few laptops of one site: one holder per 12 h shift. */
export interface Dongle {
  readonly mac: string;
  readonly laptops: readonly number[];
}

export interface PartitionSlots {
  readonly plan: PartitionPlan;
  readonly staticCount: number;
  readonly poolCount: number;
}

export interface Fleet {
  readonly devices: readonly Device[];
  readonly partitions: readonly PartitionSlots[];
  /** Next unused MAC serial, for replacement NICs. */
  macSerial: number;
  /** Docking stations' MACs at the hot desks: one per hot-desk laptop, a different laptop each day. */
  readonly docks: string[];
  /** Cloned virtual machines: pairs of devices in two partitions that report one MAC. */
  readonly clones: [number, number][];
  /** USB Ethernet dongles shared by MAC-only laptops. */
  readonly dongles: Dongle[];
}

export function generateFleet(n: number, rng: Prng): Fleet {
  const classes = classCounts(n);
  const staticCount = PARTITIONS.map(() => 0);
  const dhcpCount = PARTITIONS.map(() => 0);
  const devices: Device[] = [];
  let armis = 0;
  let netbox = 0;
  let agent = 0;
  let routerGroup = 0;
  const partitions: PartitionSlots[] = [];
  const fleet: Fleet = { devices, partitions, macSerial: 0, docks: [], clones: [], dongles: [] };
  for (const cls of DEVICE_CLASSES) {
    const p = CLASSES[cls];
    for (let k = 0; k < classes[cls]; k++) {
      const id = devices.length;
      // Routers come in pairs on one partition, sharing a virtual MAC.
      const peer = cls === "router" && k % 2 === 1 ? devices[id - 1]! : undefined;
      const site = peer ? "" : rng.weighted(p.partitions);
      const partition = peer ? peer.partition : PARTITIONS.findIndex((x) => x.name === site);
      const dhcp = p.churn !== null;
      const staticSlot = dhcp ? -1 : staticCount[partition]!++;
      if (dhcp) dhcpCount[partition]!++;
      const group = peer ? routerGroup++ : routerGroup;
      const macs = [nextMac(fleet, p.oui)];
      // wifi and wired
      if ((cls === "laptop" || cls === "workstation") && rng.chance(0.3)) macs.push(nextMac(fleet, p.oui));
      // A VM cloned from one in another partition kept its MAC (a clone whose MAC was not regenerated).
      const original = cls === "agent" && rng.chance(0.02) ? cloneSource(devices, partition, rng) : undefined;
      if (original) {
        macs[0] = original.macs[0]!;
        fleet.clones.push([original.id, id]);
      }
      const hotDesk = cls === "laptop" && rng.chance(0.15) ? fleet.docks.length : -1;
      if (hotDesk >= 0) fleet.docks.push(nextMac(fleet, DOCK_OUI));
      devices.push({
        id,
        cls,
        partition,
        dhcp,
        staticSlot,
        armisId: p.armis ? String(700_000 + armis++) : "",
        netboxId: p.netbox ? String(1 + netbox++) : "",
        agentId: p.agent ? `agent-${agent++}` : "",
        hostname: cls === "printer" ? "" : `${p.hostPrefix}-${((id * 2_654_435_761) >>> 0).toString(36)}`,
        macs,
        virtualMac:
          cls !== "router"
            ? ""
            : group % 2 === 0
              ? `00:00:5e:00:01:${hex2(group % 256)}`
              : `00:00:0c:07:ac:${hex2(group % 256)}`,
        netboxHasMac: cls === "router" || rng.chance(0.5),
        hotDesk,
        dongle: -1,
      });
    }
  }
  shareDongles(fleet, rng);
  partitions.push(
    ...PARTITIONS.map((plan, i) => ({
      plan,
      staticCount: staticCount[i]!,
      poolCount: Math.ceil(dhcpCount[i]! * plan.poolFactor) + 16,
    })),
  );
  return fleet;
}

function classCounts(n: number): Record<DeviceClass, number> {
  const out = {} as Record<DeviceClass, number>;
  let used = 0;
  for (const cls of DEVICE_CLASSES) {
    out[cls] = Math.floor(n * CLASSES[cls].share);
    used += out[cls];
  }
  out.router -= out.router % 2;
  out.laptop += n - used + (Math.floor(n * CLASSES.router.share) - out.router);
  return out;
}

/** A unique MAC: the class's vendor prefix and a scrambled serial (a bijection below 2^24). */
export function nextMac(fleet: Fleet, oui: string): string {
  const low = (Math.imul(fleet.macSerial++, 0x9e3779b1) ^ 0x5a5a5a) & 0xffffff;
  return `${oui}:${hex2(low >>> 16)}:${hex2((low >>> 8) & 255)}:${hex2(low & 255)}`.toLowerCase();
}

/** The address of a partition slot: static slots first, then the pool; .0 and .255 are skipped. */
export function slotAddress(part: PartitionSlots, slot: number): string {
  const inPool = slot >= part.staticCount;
  const i = inPool ? slot - part.staticCount : slot;
  const host = Math.floor(i / 254) * 256 + (i % 254) + 1;
  return formatIpv4((inPool ? part.plan.poolNet : part.plan.staticNet) + host);
}

function ipv4(s: string): number {
  return s.split(".").reduce((a, o) => a * 256 + Number(o), 0);
}

function formatIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

/** Docking stations' network adapters (a USB Ethernet chip vendor). */
const DOCK_OUI = "00:E0:4C";

/** USB Ethernet adapters (another vendor than the docks'). */
const DONGLE_OUI = "00:0E:C6";
/** Office laptops with no wired NIC of their own, and how many of them share one dongle. */
const DONGLE_SHARE = 0.05;
const LAPTOPS_PER_DONGLE = 3;

/**
 * MAC-only laptops sharing USB dongles: 5 % of the office laptops (hq, branch; not the hot desks) have
 * only Wi-Fi; on the wire they use a USB Ethernet dongle, one per 3 laptops of a site, passed between
 * them. Chosen after the rest of the fleet so the other classes stay as they were for a seed.
 */
function shareDongles(fleet: Fleet, rng: Prng): void {
  const bySite = new Map<number, number[]>();
  for (const d of fleet.devices) {
    if (d.cls !== "laptop" || d.hotDesk >= 0 || PARTITIONS[d.partition]!.name === "campus") continue;
    if (!rng.chance(DONGLE_SHARE)) continue;
    d.macs.length = 1; // Wi-Fi only: no wired NIC of its own
    bySite.set(d.partition, [...(bySite.get(d.partition) ?? []), d.id]);
  }
  for (const laptops of bySite.values()) {
    for (let i = 0; i < laptops.length; i += LAPTOPS_PER_DONGLE) {
      const group = laptops.slice(i, i + LAPTOPS_PER_DONGLE);
      for (const d of group) fleet.devices[d]!.dongle = fleet.dongles.length;
      fleet.dongles.push({ mac: nextMac(fleet, DONGLE_OUI), laptops: group });
    }
  }
}

/** A VM of another partition to clone, if there is one yet. */
function cloneSource(devices: readonly Device[], partition: number, rng: Prng): Device | undefined {
  const others = devices.filter((d) => d.cls === "agent" && d.partition !== partition);
  return others.length ? rng.pick(others) : undefined;
}
