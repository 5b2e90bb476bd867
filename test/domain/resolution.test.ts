import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DeviceUpdate } from "../../src/domain/device-update.js";
import { HOUR, MIN, World } from "../support/world.js";

const T0 = 1_780_000_000_000;
const M1 = "02:00:00:00:00:01";
const M2 = "02:00:00:00:00:02";
const armis = (id: string) => ({ armis_device_id: id });
const netbox = (id: string) => ({ integration_type: "netbox", integration_id: id });

describe("precedence: the strongest bound key decides", () => {
  const world = () => {
    const w = new World();
    w.publish({ device_id: "dev-A", metadata: armis("A1"), source: "armis" }, T0);
    w.publish({ device_id: "dev-N", metadata: netbox("N1"), source: "netbox" }, T0);
    w.publish({ device_id: "dev-M", mac: M1, source: "agent" }, T0);
    w.publish({ ip: "10.0.0.1", partition: "p", source: "sweep" }, T0);
    w.publish({ ip: "10.0.0.3", partition: "q", source: "sweep" }, T0);
    return w;
  };
  const all: DeviceUpdate = {
    device_id: "x",
    ip: "10.0.0.1",
    partition: "p",
    mac: M1,
    metadata: { ...armis("A1"), ...netbox("N1") },
    source: "s",
  };
  const t = T0 + MIN;

  it("Armis beats NetBox, MAC and addresses", () => {
    const d = world().publish(all, t);
    expect([d.canonicalDeviceId, d.matchedBy]).toEqual(["dev-A", "armis-id"]);
  });
  it("NetBox beats MAC and addresses", () => {
    const d = world().publish({ ...all, metadata: netbox("N1") }, t);
    expect([d.canonicalDeviceId, d.matchedBy]).toEqual(["dev-N", "netbox-id"]);
  });
  it("MAC beats partition-ip", () => {
    const d = world().publish({ ...all, metadata: {} }, t);
    expect([d.canonicalDeviceId, d.matchedBy]).toEqual(["dev-M", "mac"]);
  });
  it("partition-ip beats ip", () => {
    const d = world().publish({ ip: "10.0.0.1", partition: "p" }, t);
    expect([d.canonicalDeviceId, d.matchedBy]).toEqual(["p:10.0.0.1", "partition-ip"]);
  });
  it("the bare ip decides for an update without a partition", () => {
    const d = world().publish({ ip: "10.0.0.3" }, t);
    expect([d.canonicalDeviceId, d.matchedBy]).toEqual(["q:10.0.0.3", "ip"]);
  });
  it("the bare ip never links an update that has a partition", () => {
    const d = world().publish({ ip: "10.0.0.3", partition: "r" }, t);
    expect(d.outcome).toBe("created");
    expect(d.canonicalDeviceId).toBe("r:10.0.0.3");
  });
});

describe("rebinding and the veto", () => {
  it("a weaker assertion cannot steal a binding made by a stronger one", () => {
    const w = new World();
    w.publish({ device_id: "dev-Y", mac: M2, metadata: armis("A2") }, T0);
    w.publish({ device_id: "dev-X", mac: M1 }, T0);
    const d = w.publish({ device_id: "dev-X", mac: `${M1},${M2}` }, T0 + MIN);
    expect(d.canonicalDeviceId).toBe("dev-X");
    expect(w.owner("mac", M2)).toBe("dev-Y");
    expect(d.conflicts).toEqual([{ key: { kind: "mac", value: M2 }, reason: "weaker_assertion" }]);
  });

  it("a weaker key never merges devices whose stronger ids differ (the veto); the MAC moves to the newer Armis device", () => {
    const w = new World();
    w.publish({ device_id: "dev-X", mac: M1, metadata: armis("A1") }, T0);
    const d = w.publish({ device_id: "dev-Z", mac: M1, metadata: armis("A2") }, T0 + MIN);
    expect(d.canonicalDeviceId).toBe("dev-Z");
    expect(d.outcome).toBe("created");
    expect(d.vetoes).toBe(1);
    expect(d.tombstone).toBeUndefined();
    expect(w.owner("armis-id", "A1")).toBe("dev-X");
    expect(w.owner("mac", M1)).toBe("dev-Z");
  });

  it("a strong id that does not conflict links through a weaker key", () => {
    const w = new World();
    w.publish({ device_id: "dev-X", mac: M1, metadata: armis("A1") }, T0);
    const d = w.publish({ device_id: "dev-X", mac: M1, metadata: netbox("N1") }, T0 + MIN);
    expect([d.canonicalDeviceId, d.matchedBy]).toEqual(["dev-X", "mac"]);
    expect(w.owner("netbox-id", "N1")).toBe("dev-X");
  });

  it("an IP moving between two strong devices follows the latest", () => {
    const w = new World();
    w.publish({ device_id: "dev-X", ip: "10.0.0.5", partition: "p", metadata: armis("A1"), source: "armis" }, T0);
    w.publish({ device_id: "dev-Y", ip: "10.0.0.6", partition: "p", metadata: armis("A2"), source: "armis" }, T0);
    w.publish({ device_id: "dev-Y", ip: "10.0.0.5", partition: "p", metadata: armis("A2"), source: "armis" }, T0 + MIN);
    expect(w.owner("partition-ip", "p:10.0.0.5")).toBe("dev-Y");
    expect(w.owner("ip", "10.0.0.5")).toBe("dev-Y");
    w.publish(
      { device_id: "dev-X", ip: "10.0.0.5", partition: "p", metadata: armis("A1"), source: "armis" },
      T0 + 2 * MIN,
    );
    expect(w.owner("partition-ip", "p:10.0.0.5")).toBe("dev-X");
  });

  it("a sweep with only an IP resolves to the device holding that IP, for as long as the binding lives", () => {
    const w = new World();
    w.publish(
      { device_id: "p:10.0.0.5", ip: "10.0.0.5", partition: "p", mac: M1, metadata: armis("A1"), source: "armis" },
      T0,
    );
    const writes = w.writes;
    const d = w.publish({ ip: "10.0.0.5", partition: "p", source: "sweep" }, T0 + 2 * HOUR);
    expect([d.canonicalDeviceId, d.matchedBy, d.outcome]).toEqual(["p:10.0.0.5", "partition-ip", "unchanged"]);
    expect(w.writes).toBe(writes);
    const late = w.publish({ ip: "10.0.0.5", partition: "p", source: "sweep" }, T0 + 25 * HOUR);
    expect(late.outcome).toBe("created");
    expect(late.canonicalDeviceId).not.toBe("p:10.0.0.5");
  });
});

describe("writes: unchanged costs nothing", () => {
  const batch: DeviceUpdate[] = [
    {
      device_id: "p:10.0.0.5",
      ip: "10.0.0.5",
      partition: "p",
      mac: M1,
      metadata: armis("A1"),
      source: "armis",
      timestamp: T0,
    },
    {
      device_id: "p:10.0.0.6",
      ip: "10.0.0.6",
      partition: "p",
      metadata: netbox("N6"),
      source: "netbox",
      timestamp: T0,
    },
    { ip: "10.0.0.7", partition: "p", source: "sweep", timestamp: T0 },
    {
      device_id: "p:10.0.0.9",
      ip: "10.0.0.9",
      partition: "p",
      mac: M1,
      metadata: armis("A1"),
      source: "armis",
      timestamp: T0 + 1,
    },
  ];

  it("the same batch published twice writes nothing the second time", () => {
    const w = new World();
    for (const u of batch) w.publish(u, T0 + 5);
    const writes = w.writes;
    const again = batch.map((u) => w.publish(u, T0 + 10));
    expect(w.writes).toBe(writes);
    expect(again.map((d) => d.outcome)).toEqual(["unchanged", "unchanged", "unchanged", "unchanged"]);
    expect(again[3]!.tombstone).toEqual({ device_id: "p:10.0.0.9", merged_into: "p:10.0.0.5" });
  });

  it("sources taking turns and noise metadata cost no writes (the hash ignores non-identity metadata)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom("armis", "agent", "mapper"),
            fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 4 }),
          ),
          { minLength: 1, maxLength: 12 },
        ),
        (sightings) => {
          const w = new World();
          const base = { device_id: "dev-X", ip: "10.0.0.5", partition: "p", mac: M1, hostname: "h1" };
          for (const s of ["armis", "agent", "mapper"]) w.publish({ ...base, source: s, metadata: armis("A1") }, T0);
          const writes = w.writes;
          sightings.forEach(([source, noise], i) => {
            const d = w.publish({ ...base, source, metadata: { ...noise, ...armis("A1") } }, T0 + i * 1000);
            expect(d.outcome).toBe("unchanged");
          });
          expect(w.writes).toBe(writes);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a steady address is rewritten only once it is older than half the expiry", () => {
    const w = new World();
    const u = { device_id: "dev-X", ip: "10.0.0.5", partition: "p", metadata: armis("A1"), source: "armis" };
    w.publish(u, T0);
    const writes = w.writes;
    w.publish(u, T0 + 11 * HOUR);
    expect(w.writes).toBe(writes);
    w.publish(u, T0 + 13 * HOUR);
    expect(w.writes).toBe(writes + 2); // ip and partition-ip refreshed
    expect(w.owner("partition-ip", "p:10.0.0.5", T0 + 30 * HOUR)).toBe("dev-X");
  });
});

describe("hard cases (design.md §3)", () => {
  it("permanent ids: after a DHCP move the address-derived id redirects; a new device there gets a derived id", () => {
    const history = (w: World) => {
      w.publish(
        { device_id: "p:10.0.0.5", ip: "10.0.0.5", partition: "p", mac: M1, metadata: armis("A1"), source: "armis" },
        T0,
      );
      return w.publish(
        { device_id: "p:10.0.0.9", ip: "10.0.0.9", partition: "p", mac: M1, metadata: armis("A1"), source: "armis" },
        T0 + HOUR,
      );
    };
    const w = new World();
    const moved = history(w);
    expect(moved.canonicalDeviceId).toBe("p:10.0.0.5");
    expect(moved.tombstone).toEqual({ device_id: "p:10.0.0.9", merged_into: "p:10.0.0.5" });
    expect(w.owner("device-id", "p:10.0.0.9")).toBe("p:10.0.0.5");
    expect(w.owner("partition-ip", "p:10.0.0.5")).toBeUndefined();

    const newcomer = {
      device_id: "p:10.0.0.5",
      ip: "10.0.0.5",
      partition: "p",
      mac: M2,
      metadata: armis("A2"),
      source: "armis",
    };
    const d = w.publish(newcomer, T0 + 2 * HOUR);
    expect(d.outcome).toBe("created");
    expect(d.canonicalDeviceId).toMatch(/^p:10\.0\.0\.5~[0-9a-f]{8}$/);
    expect(d.tombstone).toBeUndefined();
    expect(w.owner("device-id", "p:10.0.0.5")).toBe("p:10.0.0.5");
    expect(w.owner("partition-ip", "p:10.0.0.5")).toBe(d.canonicalDeviceId);

    const replica = new World();
    history(replica);
    expect(replica.publish(newcomer, T0 + 2 * HOUR).canonicalDeviceId).toBe(d.canonicalDeviceId);
    const again = w.publish(newcomer, T0 + 3 * HOUR);
    expect([again.canonicalDeviceId, again.outcome]).toEqual([d.canonicalDeviceId, "unchanged"]);
  });

  it("a tombstone for an id that already redirects is repeated, and costs nothing", () => {
    const w = new World();
    w.publish({ device_id: "p:10.0.0.5", ip: "10.0.0.5", partition: "p", metadata: armis("A1"), source: "armis" }, T0);
    w.publish(
      { device_id: "p:10.0.0.9", ip: "10.0.0.9", partition: "p", metadata: armis("A1"), source: "armis" },
      T0 + MIN,
    );
    const writes = w.writes;
    const d = w.publish(
      { device_id: "p:10.0.0.9", ip: "10.0.0.9", partition: "p", metadata: armis("A1"), source: "armis" },
      T0 + 2 * MIN,
    );
    expect(d.tombstone).toEqual({ device_id: "p:10.0.0.9", merged_into: "p:10.0.0.5" });
    expect(w.writes).toBe(writes);
  });

  it("a merge backed by a shared strong identifier moves every binding of the retired device", () => {
    const w = new World();
    w.publish({ device_id: "agent-1", mac: M1, ip: "10.0.0.5", partition: "p", source: "agent" }, T0);
    w.publish({ device_id: "inv-9", metadata: armis("A9"), source: "armis" }, T0);
    const d = w.publish({ device_id: "agent-1", mac: M1, metadata: armis("A9"), source: "agent" }, T0 + MIN);
    expect(d.canonicalDeviceId).toBe("inv-9");
    expect(d.tombstone).toEqual({ device_id: "agent-1", merged_into: "inv-9" });
    expect(w.owner("mac", M1)).toBe("inv-9");
    expect(w.owner("device-id", "agent-1")).toBe("inv-9");
    expect(w.owner("partition-ip", "p:10.0.0.5")).toBe("inv-9");
    expect(d.changes.filter((c) => c.reason === "merged").length).toBeGreaterThanOrEqual(2);
  });

  it("no tombstone when the update's id names a device that shares nothing strong with it", () => {
    const w = new World();
    w.publish({ device_id: "p:10.0.0.5", ip: "10.0.0.5", partition: "p", mac: M1, source: "armis" }, T0);
    w.publish({ device_id: "dev-Y", mac: M2, source: "agent" }, T0);
    const d = w.publish(
      { device_id: "p:10.0.0.5", ip: "10.0.0.5", partition: "p", mac: M2, source: "armis" },
      T0 + MIN,
    );
    expect(d.canonicalDeviceId).toBe("dev-Y");
    expect(d.tombstone).toBeUndefined();
    expect(w.owner("device-id", "p:10.0.0.5")).toBe("p:10.0.0.5");
  });

  it("an address links a new strong identity only while fresh; an address authority's links while stale", () => {
    const run = (source: string, after: number) => {
      const w = new World();
      w.publish(
        {
          device_id: "dev-X",
          ip: "10.0.0.5",
          partition: "p",
          metadata: source === "netbox" ? netbox("N1") : armis("A1"),
          source,
        },
        T0,
      );
      return w.publish({ device_id: "agent-7", ip: "10.0.0.5", partition: "p", mac: M1, source: "agent" }, T0 + after);
    };
    expect(run("armis", 5 * MIN).canonicalDeviceId).toBe("dev-X");
    const stale = run("armis", 20 * MIN);
    expect(stale.canonicalDeviceId).toBe("agent-7");
    expect(stale.staleLinks).toBe(1);
    expect(run("netbox", 2 * HOUR).canonicalDeviceId).toBe("dev-X");
  });

  it("per-source pruning: a source's old address is dropped when it reports a new one; other sources' addresses stay", () => {
    const w = new World();
    const armisAt = (ip: string, t: number) =>
      w.publish({ device_id: "dev-X", ip, partition: "p", mac: M1, metadata: armis("A1"), source: "armis" }, t);
    const netboxAt = (ip: string, t: number) =>
      w.publish({ device_id: "nb-1", ip, partition: "p", mac: M1, metadata: netbox("N1"), source: "netbox" }, t);
    armisAt("10.0.0.5", T0);
    netboxAt("10.0.0.5", T0 + 1);
    armisAt("10.0.0.9", T0 + MIN);
    expect(w.owner("partition-ip", "p:10.0.0.5")).toBe("dev-X"); // NetBox still reports it
    expect(w.owner("partition-ip", "p:10.0.0.9")).toBe("dev-X");
    netboxAt("10.0.0.7", T0 + 2 * MIN);
    expect(w.owner("partition-ip", "p:10.0.0.5")).toBeUndefined();
    expect(w.owner("ip", "10.0.0.5")).toBeUndefined();
    const sweep = w.publish({ ip: "10.0.0.5", partition: "p", source: "sweep" }, T0 + 3 * MIN);
    expect(sweep.canonicalDeviceId).not.toBe("dev-X");
  });

  it("the record lists an address it lets go until the address is gone: a delete that never lands leaves no key unlisted", () => {
    const w = new World();
    const at = (ip: string, t: number, extra: object = {}) =>
      w.publish(
        { device_id: "dev-X", ip, partition: "p", mac: M1, metadata: armis("A1"), source: "armis", ...extra },
        t,
      );
    at("10.0.0.5", T0);
    const move = at("10.0.0.9", T0 + MIN);
    // The record is the commit point and the deletes come after it (ADR 0008): should they fail (the
    // KV went away), the old address is still bound to the device, so its index must still list it.
    const deletes = move.steps.flat().filter((s) => s.op === "delete");
    expect(deletes.map((s) => s.key.value).sort()).toEqual(["10.0.0.5", "p:10.0.0.5"]);
    const lists = (rec: typeof move.record, value: string) => rec.keys.some((k) => k.value === value);
    expect(lists(move.record, "p:10.0.0.5")).toBe(true);
    expect(lists(move.record, "10.0.0.5")).toBe(true);
    expect(move.record.keys.find((k) => k.value === "p:10.0.0.5")?.sources).toEqual([]); // no source asserts it
    // Gone now: the next sighting costs no write just to drop it from the index...
    expect(at("10.0.0.9", T0 + 2 * MIN).steps).toEqual([]);
    // ...and the next record write does drop it.
    const renamed = at("10.0.0.9", T0 + 3 * MIN, { hostname: "x-1" });
    expect(lists(renamed.record, "p:10.0.0.5")).toBe(false);
    expect(lists(renamed.record, "p:10.0.0.9")).toBe(true);
  });

  it("out-of-order: an observation older than the binding it would change never overwrites it", () => {
    const w = new World();
    w.publish({ device_id: "dev-X", ip: "10.0.0.5", partition: "p", metadata: armis("A1"), source: "armis" }, T0 + 100);
    w.publish({ device_id: "dev-Y", ip: "10.0.0.5", partition: "p", metadata: armis("A2"), source: "armis" }, T0 + 200);
    const late = w.publish(
      {
        device_id: "dev-X",
        ip: "10.0.0.5",
        partition: "p",
        metadata: armis("A1"),
        source: "armis",
        timestamp: T0 + 150,
      },
      T0 + 300,
    );
    expect(late.canonicalDeviceId).toBe("dev-X");
    expect(w.owner("partition-ip", "p:10.0.0.5")).toBe("dev-Y");
    expect(late.conflicts.map((c) => c.reason)).toContain("out_of_order");
  });

  it("an update with nothing that identifies a device is rejected", () => {
    const w = new World();
    expect(w.decision({ mac: "00:00:5e:00:01:01", hostname: "h" }, T0).status).toBe("rejected");
  });
});

describe("found by the churn simulator (idmap simulate)", () => {
  it("F1 false merge: a NIC moved into a machine whose agent has a stable id takes the agent's sightings to the NIC's old device", () => {
    const w = new World();
    w.publish(
      { device_id: "p:10.0.0.1", ip: "10.0.0.1", partition: "p", mac: M1, metadata: armis("A1"), source: "armis" },
      T0,
    );
    w.publish({ device_id: "agent-2", ip: "10.0.0.2", partition: "p", mac: M2, source: "agent" }, T0);
    // The NIC with M1 now sits in agent-2's machine.
    const d = w.publish({ device_id: "agent-2", ip: "10.0.0.2", partition: "p", mac: M1, source: "agent" }, T0 + HOUR);
    expect(d.canonicalDeviceId).toBe("agent-2");
    expect(w.owner("partition-ip", "p:10.0.0.2")).toBe("agent-2");
  });

  it("F2 duplicate + write ping-pong: NetBox reporting its static address after Armis (no MAC on record) makes a second device", () => {
    const w = new World();
    const a = {
      device_id: "p:10.0.0.1",
      ip: "10.0.0.1",
      partition: "p",
      mac: M1,
      metadata: armis("A1"),
      source: "armis",
    };
    const n = { device_id: "p:10.0.0.1", ip: "10.0.0.1", partition: "p", metadata: netbox("N1"), source: "netbox" };
    w.publish(a, T0);
    const first = w.publish(n, T0 + HOUR);
    expect(first.canonicalDeviceId).toBe("p:10.0.0.1");
    const writes = w.writes;
    w.publish(a, T0 + 2 * HOUR);
    w.publish(n, T0 + 3 * HOUR);
    expect(w.writes).toBe(writes);
  });

  it("F2b duplicate: a sweep of a static address before NetBox reports it leaves NetBox a derived id", () => {
    const w = new World();
    w.publish({ ip: "10.0.0.1", partition: "p", source: "sweep" }, T0);
    const d = w.publish(
      { device_id: "p:10.0.0.1", ip: "10.0.0.1", partition: "p", metadata: netbox("N1"), source: "netbox" },
      T0 + HOUR,
    );
    expect(d.canonicalDeviceId).toBe("p:10.0.0.1");
  });

  it("F3 a sweep's device at an address a known device reaches later is absorbed into it (design.md §3, provisional devices)", () => {
    // The sweep's device only ever carried an address: it was this device, seen before Armis reported
    // it there. It is absorbed (its id redirects) rather than left as a duplicate until it expires.
    const w = new World();
    w.publish(
      { device_id: "p:10.0.0.5", ip: "10.0.0.5", partition: "p", mac: M1, metadata: armis("A1"), source: "armis" },
      T0,
    );
    const s = w.publish({ ip: "10.0.0.9", partition: "p", source: "sweep" }, T0 + 5 * HOUR);
    const a = w.publish(
      { device_id: "p:10.0.0.9", ip: "10.0.0.9", partition: "p", mac: M1, metadata: armis("A1"), source: "armis" },
      T0 + 6 * HOUR,
    );
    expect(a.canonicalDeviceId).toBe("p:10.0.0.5");
    expect(a.tombstone).toEqual({ device_id: s.canonicalDeviceId, merged_into: "p:10.0.0.5" });
    expect(w.owner("partition-ip", "p:10.0.0.9")).toBe("p:10.0.0.5");
    expect(w.owner("device-id", s.canonicalDeviceId)).toBe("p:10.0.0.5");
  });

  it("F4 write amplification: the bare ip key flips between two partitions that use the same address on every report", () => {
    const w = new World();
    const hq = { device_id: "hq:10.0.0.5", ip: "10.0.0.5", partition: "hq", metadata: armis("A1"), source: "armis" };
    const br = {
      device_id: "branch:10.0.0.5",
      ip: "10.0.0.5",
      partition: "branch",
      metadata: armis("A2"),
      source: "armis",
    };
    w.publish(hq, T0);
    w.publish(br, T0);
    const writes = w.writes;
    const outcomes = [1, 2, 3, 4].map((i) => w.publish(i % 2 ? hq : br, T0 + i * HOUR).outcome);
    expect(outcomes).toEqual(["unchanged", "unchanged", "unchanged", "unchanged"]);
    expect(w.writes).toBe(writes);
  });

  it("F5 a strong report older than a sweep's device at the same address is refused as out of order; the device is left with no address", () => {
    const w = new World();
    w.publish(
      { device_id: "p:10.0.0.5", ip: "10.0.0.5", partition: "p", mac: M1, metadata: armis("A1"), source: "armis" },
      T0,
    );
    w.publish({ ip: "10.0.0.9", partition: "p", source: "sweep" }, T0 + 2 * HOUR); // the device, seen at its new address
    // Armis saw it there at 1:30, before the sweep, and delivers at 3:00.
    w.publish(
      {
        device_id: "p:10.0.0.9",
        ip: "10.0.0.9",
        partition: "p",
        mac: M1,
        metadata: armis("A1"),
        source: "armis",
        timestamp: T0 + 90 * MIN,
      },
      T0 + 3 * HOUR,
    );
    expect(w.owner("partition-ip", "p:10.0.0.9")).toBe("p:10.0.0.5");
  });
});

describe("address-derived ids without an address", () => {
  it("an update that carries only an address-derived id is the same device every time", () => {
    const w = new World();
    const u = { device_id: "::ffff", source: "s" };
    const first = w.publish(u, T0);
    const again = w.publish(u, T0 + MIN);
    expect([first.outcome, again.outcome]).toEqual(["created", "unchanged"]);
    expect(again.canonicalDeviceId).toBe(first.canonicalDeviceId);
  });
});

describe("address-derived ids without an address (found by the hostile-key tests)", () => {
  it("repeating an id-only update never makes a new device, even when the name's address went to another device", () => {
    const w = new World();
    w.publish({ device_id: "::ffff", source: "s" }, T0);
    w.publish({ device_id: "other", ip: "::ffff", metadata: armis("A1"), source: "armis" }, T0 + MIN);
    const again = [1, 2, 3].map((i) => w.publish({ device_id: "::ffff", source: "s" }, T0 + (i + 1) * MIN));
    expect(again.map((d) => d.canonicalDeviceId)).toEqual(["::ffff", "::ffff", "::ffff"]);
    expect(again.map((d) => d.outcome)).toEqual(["unchanged", "unchanged", "unchanged"]);
  });
});
