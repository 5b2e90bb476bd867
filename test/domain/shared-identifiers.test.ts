import { describe, expect, it } from "vitest";
import { keyId } from "../../src/domain/identity-key.js";
import { ambiguityOf, evidentlyDifferent, releaseQuarantine } from "../../src/domain/shared-identifier.js";
import { DOCK, dockedLaptop as laptop } from "../support/docked-laptop.js";
import { HOUR, World } from "../support/world.js";

const T0 = 1_780_000_000_000;
const OWN_A = "02:00:00:00:00:0A";
const macBinding = (w: World, mac: string) => w.bindings.get(keyId({ kind: "mac", value: mac }));

/** Two laptops taking turns at one dock: A, then B, then A again. */
function hotDesk(): World {
  const w = new World();
  w.publish(laptop("lap-A", "A1", "10.0.0.1", `${OWN_A},${DOCK}`), T0);
  w.publish(laptop("lap-B", "A2", "10.0.0.2", DOCK), T0 + HOUR);
  return w;
}

describe("shared identifiers (design.md §3)", () => {
  it("one move of a MAC between devices is not sharing: it follows, with its history", () => {
    const w = hotDesk();
    expect(macBinding(w, DOCK)?.record.canonicalDeviceId).toBe("lap-B");
    expect(macBinding(w, DOCK)?.record.quarantinedSinceMs).toBeUndefined();
    expect(macBinding(w, DOCK)?.record.sharedRebindsMs).toEqual([T0 + HOUR]);
  });

  it("after one hand-over between evidently different devices, a lookup by the MAC is ambiguous until the window passes (ADR 0022)", () => {
    const w = hotDesk();
    const r = macBinding(w, DOCK)!.record;
    expect(r.contenders).toEqual(["lap-A", "lap-B"]);
    const week = 7 * 24 * HOUR;
    expect(ambiguityOf(r, T0 + 2 * HOUR)).toEqual(["lap-A", "lap-B"]);
    expect(ambiguityOf(r, T0 + HOUR + week - 1)).toEqual(["lap-A", "lap-B"]);
    expect(ambiguityOf(r, T0 + HOUR + week)).toBeUndefined();
    // Configured to answer confidently until the quarantine, as design.md §3 alone would.
    expect(ambiguityOf(r, T0 + 2 * HOUR, { rebinds: 2, windowMs: week, ambiguousAfter: 2 })).toBeUndefined();
    // Its own MAC was never taken: lap-A's other MAC names it confidently.
    expect(ambiguityOf(macBinding(w, OWN_A)!.record, T0 + 2 * HOUR)).toBeUndefined();
  });

  // Found by the simulator: Armis lists a laptop that left at the time it was last seen, so the report
  // of the dongle's earlier holder often arrives after the later holder's. Refused as out of order, it
  // used to leave the MAC naming the later holder confidently.
  it("an earlier holder's late report does not move the MAC, but makes it ambiguous as a hand-over seen in order would", () => {
    const w = new World();
    w.publish(laptop("lap-B", "A2", "10.0.0.2", DOCK), T0 + HOUR);
    const late = w.publish(laptop("lap-A", "A1", "10.0.0.1", `${OWN_A},${DOCK}`), T0);
    expect(late.conflicts).toContainEqual({ key: { kind: "mac", value: DOCK }, reason: "out_of_order" });
    expect(late.trace.contested).toEqual([{ kind: "mac", value: DOCK }]);
    expect(late.changes.filter((c) => c.key.value === DOCK)).toEqual([]);
    const r = macBinding(w, DOCK)!.record;
    expect(r.canonicalDeviceId).toBe("lap-B");
    expect(r.sharedRebindsMs).toEqual([T0 + HOUR]);
    expect(ambiguityOf(r, T0 + 2 * HOUR)).toEqual(["lap-A", "lap-B"]);
    expect(ambiguityOf(r, T0 + HOUR + 7 * 24 * HOUR)).toBeUndefined();
    // The source lists the old report again: nothing more to remember, nothing written.
    const writes = w.writes;
    const again = w.publish(laptop("lap-A", "A1", "10.0.0.1", `${OWN_A},${DOCK}`), T0);
    expect(again.trace.contested).toBeUndefined();
    expect(w.writes).toBe(writes);
    // Another device's late report on top is a second hand-over within the window: quarantined, as in order.
    const third = w.publish(laptop("lap-C", "A3", "10.0.0.3", DOCK), T0 + HOUR / 2);
    expect(third.trace.quarantined).toEqual([{ kind: "mac", value: DOCK }]);
    expect(macBinding(w, DOCK)!.record.contenders).toEqual(["lap-A", "lap-B", "lap-C"]);
  });

  // Found by the two-instance suite (Redis, seed 9601891): an agent's report of lap-A's MAC at lap-A's
  // address, delivered after lap-B took the MAC, linked through the MAC to lap-B and moved lap-A's
  // address onto it.
  it("a sighting older than a MAC's hand-over is not linked through the MAC to its new holder", () => {
    const w = new World();
    const MIN = 60_000;
    w.publish(laptop("lap-A", "A1", "10.0.0.1", DOCK), T0);
    w.publish(laptop("lap-B", "A2", "10.0.0.2", `02:00:00:00:00:0B,${DOCK}`), T0 + 4 * MIN);
    expect(w.owner("mac", DOCK)).toBe("lap-B");
    // Observed at lap-A's address, within the freshness window, before lap-B took the MAC.
    const agent = w.publish({ ip: "10.0.0.1", partition: "p", mac: DOCK, source: "agent" }, T0 + 2 * MIN);
    expect(agent.trace.candidates[0]).toMatchObject({ device_id: "lap-B", verdict: "stale_link" });
    expect(agent.canonicalDeviceId).toBe("lap-A");
    expect(w.owner("partition-ip", "p:10.0.0.1")).toBe("lap-A");
    expect(w.owner("mac", DOCK)).toBe("lap-B");
    // A sighting after the hand-over still links through it.
    const later = w.publish({ ip: "10.0.0.2", partition: "p", mac: DOCK, source: "agent" }, T0 + 3 * HOUR);
    expect(later.canonicalDeviceId).toBe("lap-B");
  });

  it("a late report of the same device, or of one not evidently different, contests nothing", () => {
    const w = new World();
    w.publish(laptop("lap-B", "A2", "10.0.0.2", DOCK), T0 + HOUR);
    const same = w.publish(laptop("lap-B", "A2", "10.0.0.5", DOCK), T0);
    expect(same.trace.contested).toBeUndefined();
    // A sweep-like report with the MAC alone is no evidence of another device.
    const anon = w.publish({ ip: "10.0.0.9", partition: "p", mac: DOCK, source: "agent" }, T0);
    expect(anon.trace.contested).toBeUndefined();
    expect(macBinding(w, DOCK)!.record.sharedRebindsMs).toBeUndefined();
  });

  it("a MAC's holders are remembered while it refreshes on its holder; a sweep's device taken over is no hand-over", () => {
    const w = hotDesk();
    w.publish(laptop("lap-B", "A2", "10.0.0.2", DOCK), T0 + 20 * HOUR);
    expect(macBinding(w, DOCK)!.record.contenders).toEqual(["lap-A", "lap-B"]);
    const one = new World();
    one.publish({ ip: "10.0.0.9", partition: "p", mac: "02:00:00:00:00:99", source: "sweep" }, T0);
    one.publish(laptop("lap-C", "A3", "10.0.0.9", "02:00:00:00:00:99"), T0 + HOUR);
    const mac = macBinding(one, "02:00:00:00:00:99")!.record;
    expect(mac.sharedRebindsMs).toBeUndefined();
    expect(ambiguityOf(mac, T0 + 2 * HOUR)).toBeUndefined();
  });

  it("a quarantined MAC is ambiguous whatever the window, naming every contender", () => {
    const w = hotDesk();
    w.publish(laptop("lap-A", "A1", "10.0.0.1", `${OWN_A},${DOCK}`), T0 + 2 * HOUR);
    expect(ambiguityOf(macBinding(w, DOCK)!.record, T0 + 365 * 24 * HOUR)).toEqual(["lap-A", "lap-B"]);
  });

  it("a MAC that evidently different devices keep taking from each other is quarantined, naming both, audited", () => {
    const w = hotDesk();
    const d = w.publish(laptop("lap-A", "A1", "10.0.0.1", `${OWN_A},${DOCK}`), T0 + 2 * HOUR);
    const b = macBinding(w, DOCK)!;
    expect(b.record.quarantinedSinceMs).toBe(T0 + 2 * HOUR);
    expect(b.record.contenders).toEqual(["lap-A", "lap-B"]);
    expect(d.trace.quarantined).toEqual([{ kind: "mac", value: DOCK }]);
    expect(d.changes).toContainEqual({
      key: { kind: "mac", value: DOCK },
      fromDeviceId: "lap-B",
      toDeviceId: null,
      reason: "quarantined",
    });
    expect(d.canonicalDeviceId).toBe("lap-A");
  });

  it("a quarantined MAC links nothing: a sighting by it finds neither device, and does not move it", () => {
    const w = hotDesk();
    w.publish(laptop("lap-A", "A1", "10.0.0.1", `${OWN_A},${DOCK}`), T0 + 2 * HOUR);
    const d = w.publish({ ip: "10.0.0.50", partition: "p", mac: DOCK, source: "agent" }, T0 + 3 * HOUR);
    expect(d.canonicalDeviceId).not.toBe("lap-A");
    expect(d.canonicalDeviceId).not.toBe("lap-B");
    expect(d.trace.quarantined_ignored).toEqual([{ kind: "mac", value: DOCK }]);
    expect(macBinding(w, DOCK)?.record.quarantinedSinceMs).toBe(T0 + 2 * HOUR);
  });

  it("a quarantined MAC merges nothing: an update naming lap-B by its id with the dock MAC is not merged into lap-A", () => {
    const w = hotDesk();
    w.publish(laptop("lap-A", "A1", "10.0.0.1", `${OWN_A},${DOCK}`), T0 + 2 * HOUR);
    const d = w.publish({ device_id: "lap-B", mac: `${OWN_A},${DOCK}` }, T0 + 3 * HOUR);
    expect(d.tombstone).toBeUndefined();
    expect(w.owner("device-id", "lap-B")).toBe("lap-B");
  });

  it("evidence that two holders are different devices: a strong id, a hostname or a stable name that differ; never the MAC alone", () => {
    const holder = (id: string, attributes: Record<string, string>) => ({
      canonicalDeviceId: id,
      partition: "p",
      metadataHash: "",
      updatedAtMs: T0,
      attributes,
      source: "",
      authority: false,
      expiresAtMs: 0,
      operationId: "",
      keys: [],
    });
    const none = { armisId: "", netboxIds: [], macs: [OWN_A], hostname: "" };
    expect(evidentlyDifferent(holder("p:10.0.0.1", { mac: DOCK }), "p:10.0.0.2", none)).toBe(false);
    expect(evidentlyDifferent(holder("p:10.0.0.1", { mac: DOCK }), "p:10.0.0.2~1a2b3c4d", none)).toBe(false);
    expect(evidentlyDifferent(holder("p:10.0.0.1", { hostname: "x" }), "p:10.0.0.2", { ...none, hostname: "y" })).toBe(
      true,
    );
    expect(
      evidentlyDifferent(holder("p:10.0.0.1", { armis_device_id: "A1" }), "p:10.0.0.2", { ...none, armisId: "A2" }),
    ).toBe(true);
    expect(evidentlyDifferent(holder("lap-A", {}), "lap-B", none)).toBe(true);
  });

  it("an operator's release removes the quarantine; the next report binds the MAC afresh", () => {
    const w = hotDesk();
    w.publish(laptop("lap-A", "A1", "10.0.0.1", `${OWN_A},${DOCK}`), T0 + 2 * HOUR);
    const key = { kind: "mac", value: DOCK } as const;
    const release = releaseQuarantine(key, macBinding(w, DOCK)!);
    expect(release?.change).toEqual({ key, fromDeviceId: "lap-B", toDeviceId: null, reason: "released" });
    expect(release?.write).toEqual({ op: "delete", key, revision: macBinding(w, DOCK)!.revision });
    w.bindings.delete(keyId(key));
    const d = w.publish(laptop("lap-B", "A2", "10.0.0.2", DOCK), T0 + 4 * HOUR);
    expect(d.canonicalDeviceId).toBe("lap-B");
    expect(macBinding(w, DOCK)?.record).toMatchObject({ canonicalDeviceId: "lap-B" });
    expect(macBinding(w, DOCK)?.record.quarantinedSinceMs).toBeUndefined();
  });

  it("releasing an identifier that is not quarantined does nothing", () => {
    const w = hotDesk();
    expect(releaseQuarantine({ kind: "mac", value: DOCK }, macBinding(w, DOCK)!)).toBeUndefined();
  });

  it("the window is configurable: rebinds further apart than it never add up", () => {
    const w = new World({
      freshnessWindowMs: 15 * 60_000,
      weakKeyTtlMs: 24 * HOUR,
      addressAuthorities: new Set(["netbox"]),
      sharedIdentifiers: { rebinds: 2, windowMs: HOUR },
    });
    w.publish(laptop("lap-A", "A1", "10.0.0.1", `${OWN_A},${DOCK}`), T0);
    w.publish(laptop("lap-B", "A2", "10.0.0.2", DOCK), T0 + 2 * HOUR);
    w.publish(laptop("lap-A", "A1", "10.0.0.1", `${OWN_A},${DOCK}`), T0 + 4 * HOUR);
    expect(macBinding(w, DOCK)?.record.quarantinedSinceMs).toBeUndefined();
    expect(macBinding(w, DOCK)?.record.canonicalDeviceId).toBe("lap-A");
  });
});

describe("cloned VMs: one MAC, two self-named machines (found by the simulator)", () => {
  const vm = (id: string, partition: string, hostname: string) => ({
    device_id: id,
    ip: "10.0.0.1",
    partition,
    mac: "02:00:00:00:00:07",
    hostname,
    source: "agent",
  });

  it("a clone's first report is a device of its own, not merged into the original through the MAC", () => {
    const w = new World();
    w.publish(vm("agent-1", "dc", "vm-a"), T0);
    const d = w.publish(vm("agent-2", "hq", "vm-b"), T0 + HOUR);
    expect(d.canonicalDeviceId).toBe("agent-2");
    expect(d.tombstone).toBeUndefined();
    expect(d.trace.candidates[0]).toMatchObject({
      device_id: "agent-1",
      verdict: "vetoed",
      differing: [{ kind: "hostname", update: "vm-b", device: "vm-a" }],
    });
  });

  it("the two reporting in turn quarantine the MAC, and each keeps its own id", () => {
    const w = new World();
    w.publish(vm("agent-1", "dc", "vm-a"), T0);
    w.publish(vm("agent-2", "hq", "vm-b"), T0 + HOUR);
    const a = w.publish(vm("agent-1", "dc", "vm-a"), T0 + 2 * HOUR);
    expect(a.canonicalDeviceId).toBe("agent-1");
    expect(macBinding(w, "02:00:00:00:00:07")?.record.contenders).toEqual(["agent-1", "agent-2"]);
    expect(w.publish(vm("agent-2", "hq", "vm-b"), T0 + 3 * HOUR).canonicalDeviceId).toBe("agent-2");
  });
});
