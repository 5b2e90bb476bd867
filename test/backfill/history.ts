import type { DeviceRow } from "../../src/ports/device-store.js";
import { HOUR, MIN, NOW, row } from "./support.js";

export interface History {
  readonly rows: DeviceRow[];
  /** Every duplicate the backfill must retire: `retired id -> canonical id`. */
  readonly tombstones: Map<string, string>;
  /** Groups of more than one id, counting a device with an alias as one. */
  readonly duplicateGroups: number;
  /** Every row with a strong identity: the canonical id its identities must resolve to. */
  readonly canonicalOf: Map<string, string>;
  /** Address-only rows recent enough to be seeded as devices of their own. */
  readonly weakSeeded: readonly string[];
  /** Rows that share a MAC but carry different Armis ids: never merged. */
  readonly vetoed: readonly [string, string][];
}

/**
 * A generated history with known answers. Every row has its own address (DHCP churn names a device
 * `<partition>:<ip>` at every address), so nothing links by accident; duplicates are made on purpose:
 * devices seen under several ids (Armis, NetBox, or linked by a MAC), addresses other devices claim
 * (`all_ips`), MACs shared by devices whose Armis ids differ (never merged), and address-only sweeps.
 */
export function generateHistory(scale = 1): History {
  const rows: DeviceRow[] = [];
  const tombstones = new Map<string, string>();
  const vetoed: [string, string][] = [];
  const canonicalOf = new Map<string, string>();
  const weakSeeded: string[] = [];
  let duplicateGroups = 0;
  let ipSeq = 0;
  let macSeq = 0;
  const partitions = ["p1", "p2", "p3"];
  const nextIp = () => {
    const n = ++ipSeq;
    return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  };
  const nextMac = () => {
    const n = ++macSeq;
    return `02:00:${[(n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":")}`;
  };
  // Sightings spread over the last 20 hours; distinct times inside a group (minutes apart).
  const seen = (i: number, k = 0) => NOW - ((i * 7919) % (20 * 60)) * MIN - 2 * HOUR - k * 37 * MIN;
  const sighting = (p: string, fields: Partial<DeviceRow>) => {
    const ip = nextIp();
    return row(`${p}:${ip}`, { partition: p, ip, ...fields });
  };
  const group = (members: DeviceRow[]) => {
    // Newest first by construction: the first member is the canonical one.
    rows.push(...members);
    if (members.length > 1) duplicateGroups++;
    for (const m of members.slice(1)) tombstones.set(m.deviceId, members[0]!.deviceId);
    for (const m of members) canonicalOf.set(m.deviceId, members[0]!.deviceId);
    return members[0]!;
  };
  const n = (x: number) => Math.round(x * scale);

  for (let i = 0; i < n(20_000); i++) {
    const p = partitions[i % 3]!;
    group([
      sighting(p, { armisId: `A-${i}`, macs: [nextMac()], hostname: `h-${i}`, source: "armis", lastSeenMs: seen(i) }),
    ]);
  }
  for (let i = 0; i < n(4_000); i++) {
    const p = partitions[i % 3]!;
    const mac = nextMac();
    group(
      [0, 1, 2].map((k) => sighting(p, { armisId: `AG-${i}`, macs: [mac], source: "armis", lastSeenMs: seen(i, k) })),
    );
  }
  for (let i = 0; i < n(2_000); i++) {
    const p = partitions[i % 3]!;
    group([0, 1].map((k) => sighting(p, { netboxIds: [`NB-${i}`], source: "netbox", lastSeenMs: seen(i, k) })));
  }
  for (let i = 0; i < n(2_000); i++) {
    // One device: an agent saw its MAC (newest), Armis saw the MAC with its Armis id earlier.
    const p = partitions[i % 3]!;
    const mac = nextMac();
    group([
      sighting(p, { macs: [mac], source: "agent", lastSeenMs: seen(i) }),
      sighting(p, { macs: [mac], armisId: `AM-${i}`, source: "armis", lastSeenMs: seen(i, 1) }),
    ]);
  }
  for (let i = 0; i < n(500); i++) {
    // Two devices sharing a (cloned) MAC: different Armis ids, so never one device.
    const p = partitions[i % 3]!;
    const mac = nextMac();
    const a = group([sighting(p, { macs: [mac], armisId: `AV-${i}-a`, source: "armis", lastSeenMs: seen(i) })]);
    const b = group([sighting(p, { macs: [mac], armisId: `AV-${i}-b`, source: "armis", lastSeenMs: seen(i, 1) })]);
    vetoed.push([a.deviceId, b.deviceId]);
  }
  for (let i = 0; i < n(1_000); i++) {
    // A device that reports a second address, and a sweep that named that address as a device.
    const p = partitions[i % 3]!;
    const alias = nextIp();
    const c = group([
      sighting(p, { armisId: `AA-${i}`, source: "armis", metadata: { all_ips: alias }, lastSeenMs: seen(i) }),
    ]);
    rows.push(row(`${p}:${alias}`, { partition: p, ip: alias, source: "sweep", lastSeenMs: seen(i, 1) }));
    tombstones.set(`${p}:${alias}`, c.deviceId);
    duplicateGroups++;
  }
  for (let i = 0; i < n(8_000); i++) {
    // Address-only sweeps; one in eight is too old to seed (its bindings would be born expired).
    const p = partitions[i % 3]!;
    const r = sighting(p, { source: "sweep", lastSeenMs: i % 8 === 0 ? NOW - 30 * HOUR : seen(i) });
    rows.push(r);
    if (i % 8 !== 0) weakSeeded.push(r.deviceId);
  }
  return { rows, tombstones, duplicateGroups, canonicalOf, weakSeeded, vetoed };
}
