import type { DeviceUpdate } from "../../src/domain/device-update.js";

/**
 * A churn scenario with ground truth for the consistency tests: Armis devices reported by several
 * sources, DHCP moves (Armis then names the device by its new address), a newcomer that takes over a
 * released address under the old device's name, a MAC moved from one Armis device to another, NetBox
 * records, and address-only sweeps. Every update carries its observation time and the device it
 * really belongs to (`truth`: an Armis id; none for sweeps, which can only observe an address).
 */
export interface Sighting {
  readonly update: DeviceUpdate & { readonly timestamp: number; readonly source: string };
  readonly truth?: string;
}

export function churn(run: string, devices: number, t0: number): Sighting[] {
  const out: Sighting[] = [];
  const hex = (n: number) => (n & 255).toString(16).padStart(2, "0");
  const mac = (i: number) => `0a:${run.slice(0, 2)}:${run.slice(2, 4)}:00:${hex(i >> 8)}:${hex(i)}`;
  const armis = (i: number) => `A-${run}-${i}`;
  const at = (s: number) => t0 + s * 1_000;
  const ipA = (i: number) => `10.50.0.${i + 1}`;
  const ipB = (i: number) => `10.50.1.${i + 1}`;
  const moves = (i: number) => i % 3 === 0;
  const current = (i: number, s: number) => (moves(i) && s >= 100 ? ipB(i) : ipA(i));
  const armisReport = (i: number, s: number, macs: string[] = [mac(i)]): Sighting => {
    const ip = current(i, s);
    return {
      update: {
        device_id: `c:${ip}`,
        ip,
        partition: "c",
        mac: macs.join(","),
        hostname: `h-${i}`,
        source: "armis",
        metadata: { armis_device_id: armis(i) },
        timestamp: at(s),
      },
      truth: armis(i),
    };
  };
  for (let i = 0; i < devices; i++) {
    out.push(armisReport(i, 10 + i));
    out.push({
      update: { ip: ipA(i), partition: "c", mac: mac(i), source: "agent", timestamp: at(40 + i) },
      truth: armis(i),
    });
    // Sweeps only of addresses their device keeps: a sweep of an address its device left finds the
    // device before the move is applied and a new address-only device after it, so its outcome would
    // depend on the order in which two instances apply them (test/consistency/races.test.ts).
    if (!moves(i)) out.push({ update: { ip: ipA(i), partition: "c", source: "sweep", timestamp: at(60 + i) } });
    if (moves(i)) {
      // DHCP move: Armis reports the device under its new address-derived name.
      out.push(armisReport(i, 100 + i));
      out.push({
        update: { ip: ipB(i), partition: "c", mac: mac(i), source: "agent", timestamp: at(130 + i) },
        truth: armis(i),
      });
    }
    if (i % 6 === 0) {
      // A newcomer takes the released address, and Armis names it as it named the old device.
      const n = 1_000 + i;
      out.push({
        update: {
          device_id: `c:${ipA(i)}`,
          ip: ipA(i),
          partition: "c",
          mac: mac(n),
          hostname: `h-${n}`,
          source: "armis",
          metadata: { armis_device_id: armis(n) },
          timestamp: at(160 + i),
        },
        truth: armis(n),
      });
      out.push({ update: { ip: ipA(i), partition: "c", source: "sweep", timestamp: at(190 + i) } });
    }
    if (i % 8 === 1 && i + 1 < devices) {
      // A NIC moved: device i+1 now reports device i's MAC beside its own.
      out.push(armisReport(i + 1, 220 + i, [mac(i + 1), mac(i)]));
    }
    if (i % 4 === 2) {
      out.push({
        update: {
          device_id: `nb-${run}-${i}`,
          ip: current(i, 250 + i),
          partition: "c",
          mac: mac(i),
          source: "netbox",
          metadata: { integration_type: "netbox", integration_id: `NB-${run}-${i}` },
          timestamp: at(250 + i),
        },
        truth: armis(i),
      });
    }
  }
  return out.sort((a, b) => a.update.timestamp - b.update.timestamp);
}

/** A small deterministic PRNG (mulberry32), so a failing order can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The list with elements shuffled inside consecutive windows: each source delivers late, but not by much. */
export function jitter<T>(items: readonly T[], window: number, random: () => number): T[] {
  const out: T[] = [];
  for (let i = 0; i < items.length; i += window) {
    const w = items.slice(i, i + window);
    for (let j = w.length - 1; j > 0; j--) {
      const k = Math.floor(random() * (j + 1));
      [w[j], w[k]] = [w[k]!, w[j]!];
    }
    out.push(...w);
  }
  return out;
}

export function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
