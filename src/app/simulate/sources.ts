import type { DeviceUpdate } from "../../domain/device-update.js";
import type { Device } from "./fleet.js";
import type { Prng } from "./prng.js";

export type SourceName = "armis" | "netbox" | "agent" | "sweep";

/** One update as sent, with what the simulator knows and the service must work out. */
export interface Sighting {
  readonly update: DeviceUpdate;
  /** The true device. */
  readonly device: number;
  readonly source: SourceName;
  /** Carries a strong identifier or a stable device id (everything but sweeps). */
  readonly asserting: boolean;
  /** Identity keys the update derives (device-id, ip, partition-ip, armis, netbox, valid MACs). */
  readonly keys: number;
  /** `partition:ip` of the sighting. */
  readonly addressKey: string;
  /** The hot desk's dock or USB dongle MAC the update carries (a MAC several devices take turns with), if any. */
  readonly sharedMac?: string;
  /**
   * Which tenure of the device at this address the sighting saw (the time its DHCP lease began; -1 for
   * a static address): the truth that says whether any asserting source ever saw a sweep's device there.
   */
  readonly stay?: number;
}

/** Where and when a source saw a device. */
export interface Where {
  readonly ip: string;
  readonly partition: string;
  readonly t: number;
  /** The device's tenure at the address (see `Sighting.stay`). */
  readonly stay?: number;
}

// What each source says about a device it sees: its own naming, its subset of identifiers, its MAC
// notation and its noise metadata. The scenario decides when and where; these decide what is said.

/** An agent: its stable id, every MAC (dash notation), the address and hostname. */
export function agentSighting(dev: Device, at: Where, uptimeMs: number, dock = ""): Sighting {
  return sighting(
    dev,
    "agent",
    dock,
    {
      device_id: dev.agentId,
      ip: at.ip,
      partition: at.partition,
      mac: [...dev.macs, ...(dock ? [dock] : [])].map((m) => m.toUpperCase().replace(/:/g, "-")).join(" "),
      hostname: dev.hostname,
      source: "agent",
      metadata: { agent_version: "1.4.2", uptime_s: String(Math.round(uptimeMs / 1000)) },
      timestamp: at.t,
    },
    at,
  );
}

/**
 * Armis names a device by its address (`partition:ip`); it reports MACs 9 times in 10 (one of two
 * at random for a device with two NICs), the hostname 8 times in 10, and a risk score that changes.
 * A laptop on a USB dongle (`dongle`) is seen with the dongle's MAC alone: it has no wired NIC of its
 * own, and its Wi-Fi is off while it is wired.
 */
export function armisSighting(dev: Device, at: Where, rng: Prng, dock = "", dongle = ""): Sighting {
  const withMacs = rng.chance(0.9);
  const macs = !withMacs
    ? []
    : dongle
      ? [dongle]
      : dev.macs.length > 1 && rng.chance(0.5)
        ? [rng.pick(dev.macs)]
        : dev.macs;
  // A docked laptop is seen with the dock's MAC (the wired link goes through it).
  const all = [...macs, ...(dock ? [dock] : []), ...(dev.virtualMac ? [dev.virtualMac] : [])];
  const shared = dock || (withMacs ? dongle : "");
  return sighting(
    dev,
    "armis",
    shared,
    {
      device_id: `${at.partition}:${at.ip}`,
      ip: at.ip,
      partition: at.partition,
      ...(all.length ? { mac: all.join(",") } : {}),
      ...(rng.chance(0.8) ? { hostname: dev.hostname } : {}),
      source: "armis",
      metadata: {
        armis_device_id: dev.armisId,
        risk_score: String(rng.int(100)),
        site: at.partition,
        last_seen: new Date(at.t).toISOString(),
      },
      timestamp: at.t,
    },
    at,
  );
}

/** NetBox names a device by its static address too; MACs (Cisco notation) only where interfaces are documented. */
export function netboxSighting(dev: Device, at: Where): Sighting {
  const macs = dev.netboxHasMac ? [...dev.macs, ...(dev.virtualMac ? [dev.virtualMac] : [])] : [];
  return sighting(
    dev,
    "netbox",
    "",
    {
      device_id: `${at.partition}:${at.ip}`,
      ip: at.ip,
      partition: at.partition,
      ...(macs.length ? { mac: macs.map(ciscoMac).join(";") } : {}),
      hostname: dev.hostname,
      source: "netbox",
      metadata: {
        integration_type: "netbox",
        integration_id: dev.netboxId,
        netbox_device_id: dev.netboxId,
        role: dev.cls,
        site: at.partition,
      },
      timestamp: at.t,
    },
    at,
  );
}

/** A sweep sends only the address: it asserts nothing about which device answered. */
export function sweepSighting(device: number, at: Where): Sighting {
  const update = { ip: at.ip, partition: at.partition, source: "sweep", timestamp: at.t };
  const addressKey = `${at.partition}:${at.ip}`;
  return { update, device, source: "sweep", asserting: false, keys: 3, addressKey, ...stayField(at) };
}

const stayField = (at: Where) => (at.stay === undefined ? {} : { stay: at.stay });

function sighting(dev: Device, source: SourceName, sharedMac: string, update: DeviceUpdate, at: Where): Sighting {
  const macs = (update.mac ?? "").split(/[,; ]+/).filter((m) => m !== "" && !isVirtual(m)).length;
  const keys = 3 + (update.metadata?.armis_device_id ? 1 : 0) + (update.metadata?.integration_id ? 1 : 0) + macs;
  const addressKey = `${update.partition}:${update.ip}`;
  return {
    update,
    device: dev.id,
    source,
    asserting: true,
    keys,
    addressKey,
    ...(sharedMac ? { sharedMac } : {}),
    ...stayField(at),
  };
}

function ciscoMac(m: string): string {
  const h = m.replace(/[:-]/g, "").toLowerCase();
  return `${h.slice(0, 4)}.${h.slice(4, 8)}.${h.slice(8)}`;
}

/** VRRP and HSRP virtual MACs: the service refuses them, so they are no key. */
function isVirtual(m: string): boolean {
  const h = m.replace(/[:.-]/g, "").toLowerCase();
  return h.startsWith("00005e0001") || h.startsWith("00000c07ac");
}
