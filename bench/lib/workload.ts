import type { DeviceUpdate } from "../../src/domain/device-update.js";

/**
 * The devices the benchmark publishes: Armis-style sightings named `<partition>:<ip>`, each with an
 * Armis id, a MAC and a hostname (five keys: device-id, ip, partition-ip, armis-id, mac).
 * Generation 0 is the first sighting; generation g > 0 is the same device after g DHCP moves (a new
 * address and so a new Armis-style id, same Armis id and MAC), which the service answers with an
 * update and a tombstone for the new id.
 */
export const PARTITION = "bench";

const octets = (i: number) => `${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const hex2 = (n: number) => (n & 255).toString(16).padStart(2, "0");

export function deviceIp(i: number, generation: number): string {
  return `${10 + generation}.${octets(i)}`;
}

/** Locally administered unicast MACs (02:...), never a virtual-router or broadcast address. */
export function deviceMac(i: number): string {
  return `02:00:${hex2(i >> 24)}:${hex2(i >> 16)}:${hex2(i >> 8)}:${hex2(i)}`;
}

export function sighting(i: number, generation: number): DeviceUpdate {
  const ip = deviceIp(i, generation);
  return {
    device_id: `${PARTITION}:${ip}`,
    ip,
    partition: PARTITION,
    mac: deviceMac(i),
    hostname: `host-${i}`,
    source: "armis",
    metadata: { armis_device_id: `A-${i}` },
  };
}

/** Devices [from, from + count) at one generation, in batches of `batchSize`. */
export function batches(from: number, count: number, generation: number, batchSize: number): DeviceUpdate[][] {
  const out: DeviceUpdate[][] = [];
  for (let start = from; start < from + count; start += batchSize) {
    const n = Math.min(batchSize, from + count - start);
    out.push(Array.from({ length: n }, (_, j) => sighting(start + j, generation)));
  }
  return out;
}

/** Bindings each new device of `sighting` makes: device-id, ip, partition-ip, armis-id, mac. */
export const BINDINGS_PER_DEVICE = 5;

/**
 * Publishes new devices, `from` onwards, in batches of at most `batchSize`, until `bindings()` (the
 * cache's size) reaches `target`; every update must come back created. `progress` is called at most
 * every five seconds. Returns the next unused device number.
 */
export async function seedBindings(opts: {
  readonly publish: (batch: DeviceUpdate[]) => Promise<readonly { readonly outcome: string }[]>;
  readonly bindings: () => number;
  readonly target: number;
  readonly from: number;
  readonly batchSize: number;
  readonly progress?: (bindings: number, devicesPerSecond: number) => void;
}): Promise<number> {
  const t0 = performance.now();
  let last = t0;
  let device = opts.from;
  while (opts.bindings() < opts.target) {
    const n = Math.max(1, Math.min(opts.batchSize, Math.ceil((opts.target - opts.bindings()) / BINDINGS_PER_DEVICE)));
    const [batch] = batches(device, n, 0, n);
    const refused = (await opts.publish(batch!)).find((r) => r.outcome !== "created");
    if (refused) throw new Error(`seeding: unexpected outcome ${refused.outcome}`);
    device += n;
    if (opts.progress && performance.now() - last > 5_000) {
      last = performance.now();
      opts.progress(opts.bindings(), Math.round((device - opts.from) / ((last - t0) / 1000)));
    }
  }
  return device;
}
