import { describe, expect, it } from "vitest";
import { keyId } from "../../src/domain/identity-key.js";
import { HOUR, MIN, World } from "../support/world.js";

const T0 = 1_780_000_000_000;
const M1 = "02:00:00:00:00:01";
const DOCK = "02:00:00:00:0D:0C";
const armis = (id: string) => ({ armis_device_id: id });
const sweep = (ip: string) => ({ ip, partition: "p", source: "sweep" });
const laptop = (ip: string, extra: object = {}) => ({
  device_id: "dev-K",
  ip,
  partition: "p",
  mac: M1,
  metadata: armis("A1"),
  source: "armis",
  ...extra,
});

describe("provisional devices (design.md §3)", () => {
  it("a device that only ever carried addresses says so in every binding; weak sightings keep it provisional", () => {
    const w = new World();
    const s = w.publish(sweep("10.0.0.9"), T0);
    w.publish(sweep("10.0.0.9"), T0 + 13 * HOUR);
    expect(s.record.provisionalSinceMs).toBe(T0);
    for (const b of w.bindings.values()) expect(b.record.provisionalSinceMs).toBe(T0);
  });

  it("a new identity at a provisional device's address takes it over, however old the sweep: same id, no derived id", () => {
    const w = new World();
    const s = w.publish(sweep("10.0.0.9"), T0);
    const d = w.publish({ ip: "10.0.0.9", partition: "p", mac: M1, source: "agent" }, T0 + 5 * HOUR);
    expect(d.canonicalDeviceId).toBe(s.canonicalDeviceId);
    expect(d.matchedBy).toBe("partition-ip");
    expect(d.tombstone).toBeUndefined();
    expect(d.record.provisionalSinceMs).toBeUndefined();
    expect(w.owner("mac", M1)).toBe(s.canonicalDeviceId);
    for (const b of w.bindings.values()) expect(b.record.provisionalSinceMs).toBeUndefined();
  });

  it("audits each rule by its own name: created, then taken_over, then linked", () => {
    const w = new World();
    const s = w.publish(sweep("10.0.0.9"), T0);
    expect(new Set(s.changes.map((c) => c.reason))).toEqual(new Set(["created"]));
    const d = w.publish({ ip: "10.0.0.9", partition: "p", mac: M1, source: "agent" }, T0 + 5 * HOUR);
    expect(d.changes.map((c) => [c.key.kind, c.reason])).toEqual([["mac", "taken_over"]]);
    const m = w.publish({ ip: "10.0.0.10", partition: "p", mac: M1, source: "agent" }, T0 + 6 * HOUR);
    // Its address-derived name for the new address redirects to it; the old address is let go.
    expect(m.changes.map((c) => [c.key.kind, c.reason]).sort()).toEqual([
      ["device-id", "merged"],
      ["ip", "linked"],
      ["ip", "moved"],
      ["partition-ip", "linked"],
      ["partition-ip", "moved"],
    ]);
  });

  it("a stable id alone asserts too: it takes the provisional device over and its own id redirects there", () => {
    const w = new World();
    const s = w.publish(sweep("10.0.0.9"), T0);
    const d = w.publish({ device_id: "host-7", ip: "10.0.0.9", partition: "p", source: "agent" }, T0 + 5 * HOUR);
    expect(d.canonicalDeviceId).toBe(s.canonicalDeviceId);
    expect(d.tombstone).toEqual({ device_id: "host-7", merged_into: s.canonicalDeviceId });
  });

  it("the freshness window still guards a device with a strong identifier", () => {
    const w = new World();
    w.publish({ ip: "10.0.0.9", partition: "p", mac: DOCK, source: "agent" }, T0);
    const d = w.publish({ ip: "10.0.0.9", partition: "p", mac: M1, source: "agent" }, T0 + HOUR);
    expect(d.outcome).toBe("created");
    expect(d.staleLinks).toBeGreaterThan(0);
  });

  it("a known device seen at a provisional device's address absorbs it: tombstone, every binding follows, audited as absorbed", () => {
    const w = new World();
    w.publish(laptop("10.0.0.5"), T0);
    const s = w.publish(sweep("10.0.0.9"), T0 + HOUR);
    const d = w.publish(laptop("10.0.0.9"), T0 + 3 * HOUR);
    expect(d.canonicalDeviceId).toBe("dev-K");
    expect(d.matchedBy).toBe("armis-id");
    expect(d.tombstone).toEqual({ device_id: s.canonicalDeviceId, merged_into: "dev-K" });
    expect(w.owner("device-id", s.canonicalDeviceId)).toBe("dev-K");
    expect(w.owner("partition-ip", "p:10.0.0.9")).toBe("dev-K");
    expect(d.changes.filter((c) => c.reason === "absorbed").map((c) => c.key.kind)).toContain("device-id");
    expect(d.record.provisionalSinceMs).toBeUndefined();
  });

  it("the two-places guard: a device seen asserted at another address after the provisional one appeared does not absorb it", () => {
    const w = new World();
    w.publish(laptop("10.0.0.5"), T0);
    const s = w.publish(sweep("10.0.0.9"), T0 + HOUR);
    // Another source sees the laptop at yet another address after the sweep first saw 10.0.0.9.
    w.publish(laptop("10.0.0.7", { source: "agent" }), T0 + 2 * HOUR);
    const d = w.publish(laptop("10.0.0.9"), T0 + 3 * HOUR);
    expect(d.canonicalDeviceId).toBe("dev-K");
    expect(d.tombstone).toBeUndefined();
    expect(d.changes.some((c) => c.reason === "absorbed")).toBe(false);
    expect(w.owner("device-id", s.canonicalDeviceId)).toBe(s.canonicalDeviceId);
  });

  it("only while the provisional device's address binding is live", () => {
    const w = new World();
    w.publish(laptop("10.0.0.5"), T0);
    const s = w.publish(sweep("10.0.0.9"), T0 + HOUR);
    const d = w.publish(laptop("10.0.0.9"), T0 + 26 * HOUR);
    expect(d.tombstone).toBeUndefined();
    expect(w.owner("device-id", s.canonicalDeviceId)).toBe(s.canonicalDeviceId);
  });

  it("the veto first: a dock's MAC never pulls an update with another Armis id onto the docked device; it takes the sweep's device over", () => {
    const w = new World();
    w.publish({ device_id: "dev-K", ip: "10.0.0.5", partition: "p", mac: DOCK, metadata: armis("A1") }, T0);
    const s = w.publish(sweep("10.0.0.9"), T0 + HOUR);
    const d = w.publish(
      { device_id: "dev-L", ip: "10.0.0.9", partition: "p", mac: DOCK, metadata: armis("A2"), source: "armis" },
      T0 + 2 * HOUR,
    );
    expect(d.vetoes).toBe(1);
    expect(d.canonicalDeviceId).toBe(s.canonicalDeviceId);
    expect(w.owner("armis-id", "A1")).toBe("dev-K");
    expect(w.owner("armis-id", "A2")).toBe(s.canonicalDeviceId);
  });

  it("a provisional device is absorbed once: replaying the update writes nothing", () => {
    const w = new World();
    w.publish(laptop("10.0.0.5"), T0);
    w.publish(sweep("10.0.0.9"), T0 + HOUR);
    w.publish(laptop("10.0.0.9"), T0 + 3 * HOUR);
    const writes = w.writes;
    const again = w.publish(laptop("10.0.0.9"), T0 + 3 * HOUR + MIN);
    expect(again.outcome).toBe("unchanged");
    expect(w.writes).toBe(writes);
  });
});

describe("the decision's trace (explain)", () => {
  it("names each candidate with the key that named it, the veto with the differing identifier, and the rule", () => {
    const w = new World();
    w.publish({ device_id: "dev-K", ip: "10.0.0.5", partition: "p", mac: DOCK, metadata: armis("A1") }, T0);
    const s = w.publish(sweep("10.0.0.9"), T0 + HOUR);
    const d = w.publish(
      { device_id: "dev-L", ip: "10.0.0.9", partition: "p", mac: DOCK, metadata: armis("A2"), source: "armis" },
      T0 + 2 * HOUR,
    );
    expect(d.trace.rule).toBe("provisional_take_over");
    expect(d.trace.provisional).toEqual({ action: "take_over", device_id: s.canonicalDeviceId });
    expect(d.trace.candidates[0]).toEqual({
      device_id: "dev-K",
      key: { kind: "mac", value: DOCK },
      verdict: "vetoed",
      provisional: false,
      differing: [{ kind: "armis-id", update: "A2", device: "A1" }],
    });
    expect(d.trace.candidates.at(-1)).toMatchObject({ device_id: s.canonicalDeviceId, verdict: "chosen" });
    expect(d.trace.own_id).toBe("redirect");
  });

  it("shows a stale link refused, an absorption and its refusal by the two-places guard", () => {
    const w = new World();
    w.publish({ ip: "10.0.0.3", partition: "p", mac: DOCK, source: "agent" }, T0);
    const stale = w.publish(
      { device_id: "lap-2", ip: "10.0.0.3", partition: "p", mac: M1, source: "agent" },
      T0 + HOUR,
    );
    expect(stale.trace.rule).toBe("new_device");
    expect(stale.trace.candidates.map((c) => c.verdict)).toContain("stale_link");

    w.publish(laptop("10.0.0.5"), T0);
    const s = w.publish(sweep("10.0.0.9"), T0 + HOUR);
    const a = w.publish(laptop("10.0.0.9"), T0 + 3 * HOUR);
    expect(a.trace.rule).toBe("strongest_bound_key");
    expect(a.trace.provisional).toEqual({ action: "absorbed", device_id: s.canonicalDeviceId });

    const w2 = new World();
    w2.publish(laptop("10.0.0.5"), T0);
    const s2 = w2.publish(sweep("10.0.0.9"), T0 + HOUR);
    w2.publish(laptop("10.0.0.7", { source: "agent" }), T0 + 2 * HOUR);
    const r = w2.publish(laptop("10.0.0.9"), T0 + 3 * HOUR);
    expect(r.trace.provisional).toEqual({
      action: "absorption_refused",
      device_id: s2.canonicalDeviceId,
      reason: "two_places",
    });
  });

  it("a new device whose natural id is taken says it got a derived id", () => {
    const w = new World();
    w.publish({ device_id: "p:10.0.0.1", ip: "10.0.0.1", partition: "p", mac: M1, source: "agent" }, T0);
    const d = w.publish({ device_id: "p:10.0.0.1", mac: DOCK, metadata: armis("A9") }, T0 + 2 * HOUR);
    expect(d.outcome).toBe("created");
    expect(d.trace.rule).toBe("derived_id");
  });
});

describe("a sweep never keeps a known device's address alive (found by the simulator)", () => {
  // A sweep cannot tell who answers at an address. It refreshed the address a laptop had left (its next
  // occupant answering), so the laptop looked seen there; when its source then reported it at a
  // provisional device's address, the two-places guard refused the absorption and the sweep-born id
  // stayed a duplicate (7 of them at 10 000 devices).
  it("the laptop's old address is not refreshed by sweeps, and the provisional device at its new one is absorbed", () => {
    const w = new World();
    w.publish(laptop("10.0.0.1"), T0);
    // Half a TTL later the laptop is gone; a sweep finds its old address answering (someone else).
    w.publish(sweep("10.0.0.1"), T0 + 13 * HOUR);
    expect(seenAt(w, "10.0.0.1")).toBe(T0);
    const s = w.publish(sweep("10.0.0.9"), T0 + 13 * HOUR + 30 * MIN);
    w.publish(sweep("10.0.0.1"), T0 + 13 * HOUR + 40 * MIN);
    expect(seenAt(w, "10.0.0.1")).toBe(T0);
    const a = w.publish(laptop("10.0.0.9"), T0 + 14 * HOUR);
    expect(a.trace.provisional).toEqual({ action: "absorbed", device_id: s.canonicalDeviceId });
    expect(a.tombstone).toEqual({ device_id: s.canonicalDeviceId, merged_into: "dev-K" });
  });

  it("it still keeps a sweep-born device's address alive; the known device's ages out from its own reports", () => {
    const w = new World();
    const s = w.publish(sweep("10.0.0.9"), T0);
    w.publish(laptop("10.0.0.1"), T0);
    w.publish(sweep("10.0.0.9"), T0 + 13 * HOUR);
    expect(seenAt(w, "10.0.0.9")).toBe(T0 + 13 * HOUR);
    w.publish(sweep("10.0.0.1"), T0 + 13 * HOUR);
    expect(w.owner("partition-ip", "p:10.0.0.9", T0 + 30 * HOUR)).toBe(s.canonicalDeviceId);
    expect(w.owner("partition-ip", "p:10.0.0.1", T0 + 30 * HOUR)).toBeUndefined();
    // Its own source's report refreshes it as before.
    w.publish(laptop("10.0.0.1"), T0 + 20 * HOUR);
    expect(seenAt(w, "10.0.0.1")).toBe(T0 + 20 * HOUR);
    expect(w.owner("partition-ip", "p:10.0.0.1", T0 + 30 * HOUR)).toBe("dev-K");
  });
});

/** When the address's binding was last seen (what freshness, expiry and the two-places guard read). */
function seenAt(w: World, ip: string): number | undefined {
  return w.bindings.get(keyId({ kind: "partition-ip", value: `p:${ip}` }))?.record.updatedAtMs;
}

describe("an address that names many devices over time (found by the simulator)", () => {
  it("every sweep-born device absorbed there leaves a redirect; the next one still gets a free derived id", () => {
    const w = new World();
    for (let i = 0; i < 8; i++) {
      const t = T0 + i * 30 * HOUR;
      const lap = {
        ...laptop("10.0.0.5"),
        device_id: `dev-${i}`,
        metadata: armis(`A${i}`),
        mac: `02:00:00:00:01:${10 + i}`,
      };
      w.publish(lap, t);
      const s = w.publish(sweep("10.0.0.9"), t + HOUR);
      const d = w.publish({ ...lap, ip: "10.0.0.9" }, t + 2 * HOUR);
      expect(d.tombstone, `round ${i}`).toEqual({ device_id: s.canonicalDeviceId, merged_into: `dev-${i}` });
    }
  });
});
