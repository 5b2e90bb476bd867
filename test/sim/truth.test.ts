import { describe, expect, it } from "vitest";
import type { Sighting } from "../../src/app/simulate/sources.js";
import { Ledger, type PublishResultJson } from "../../src/app/simulate/truth.js";

// The ledger's split of sweep-only ids: one a rule could attribute (an asserting source reported the
// device during the tenure the sweep saw) and one nothing in the data can (a lease held only between
// two reports). The second bounds what any map without false merges can remove.
const LAPTOP = 0;

function sweep(ip: string, stay: number, t: number): Sighting {
  return {
    update: { ip, partition: "campus", source: "sweep", timestamp: t },
    device: LAPTOP,
    source: "sweep",
    asserting: false,
    keys: 3,
    addressKey: `campus:${ip}`,
    stay,
  };
}

function armis(ip: string, stay: number, t: number): Sighting {
  return { ...sweep(ip, stay, t), source: "armis", asserting: true, keys: 5 };
}

const result = (id: string): PublishResultJson => ({
  device_id: id,
  canonical_device_id: id,
  matched_by: null,
  outcome: "created",
});

function ledger(): Ledger {
  return new Ledger(
    1,
    () => false,
    () => "laptop@campus",
  );
}

/** The ledger's summary after these sightings, each filed under the canonical id it got. */
function summaryOf(...filed: [Sighting, string][]) {
  const l = ledger();
  for (const [s, id] of filed) l.record(s, result(id));
  return l.summary();
}

describe("the simulator's ledger: sweep-only ids a rule could attribute, and those nothing can", () => {
  it("counts a sweep-only id as unattributable when no asserting source reported the device in that tenure", () => {
    const s = summaryOf(
      [armis("172.20.0.1", 1000, 1000), "laptop"],
      // The laptop's next lease, held only between two Armis reports: only the sweep saw it there.
      [sweep("172.20.0.2", 5000, 6000), "provisional-1"],
      [armis("172.20.0.3", 9000, 9000), "laptop"],
    );
    expect(s.weak_ids_of_strong_devices).toBe(1);
    expect(s.weak_ids_unattributable).toBe(1);
  });

  it("counts it as attributable when an asserting source reported the device in the same tenure", () => {
    const s = summaryOf(
      [sweep("172.20.0.2", 5000, 6000), "provisional-1"],
      // Armis saw the laptop at that address in the same lease, but the map gave it its own id.
      [armis("172.20.0.2", 5000, 7000), "laptop"],
    );
    expect(s.weak_ids_of_strong_devices).toBe(1);
    expect(s.weak_ids_unattributable).toBe(0);
  });

  it("does not take a report of the same address in an earlier tenure as evidence", () => {
    const s = summaryOf(
      [armis("172.20.0.2", 1000, 1000), "laptop"],
      [sweep("172.20.0.2", 5000, 6000), "provisional-1"],
    );
    expect(s.weak_ids_unattributable).toBe(1);
  });
});
