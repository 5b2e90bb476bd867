/** The MAC of a hot-desk dock that the shared-MAC tests hand from laptop to laptop. */
export const DOCK = "02:00:00:00:0D:0C";

/**
 * An Armis sighting of a laptop with the MACs it has at hand (its own, a dock's): its hostname is its
 * name, so two laptops are evidently different devices. `at` is the observation time, when given.
 */
export function dockedLaptop(name: string, armisId: string, ip: string, mac: string, at?: number) {
  return {
    device_id: name,
    ip,
    partition: "p",
    mac,
    hostname: name,
    metadata: { armis_device_id: armisId },
    source: "armis",
    ...(at === undefined ? {} : { timestamp: at }),
  };
}
