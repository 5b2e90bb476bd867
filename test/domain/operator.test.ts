import { describe, expect, it } from "vitest";
import { keyId } from "../../src/domain/identity-key.js";
import { planMerge } from "../../src/domain/operator/merge.js";
import { planPin, planUnpin } from "../../src/domain/operator/pin.js";
import { planSplit, splitDeviceId } from "../../src/domain/operator/split.js";
import type { OperatorPlan } from "../../src/domain/operator/device-state.js";
import { InvalidArgument, NotFound } from "../../src/domain/errors.js";
import { HOUR, MIN, World } from "../support/world.js";

const T0 = 1_780_000_000_000;
const M1 = "02:00:00:00:06:01";
const M2 = "02:00:00:00:06:02";
const ctx = (nowMs: number) => ({ actor: "token:op", nowMs, operationId: `op-${nowMs}` });

/** Applies an operator's plan to the world with the revision checks a KV makes; `limit` stops part-way. */
function apply(w: World, plan: OperatorPlan, limit = Infinity): void {
  let rev = Math.max(0, ...[...w.bindings.values()].map((b) => b.revision));
  for (const wr of plan.writes.slice(0, limit)) {
    const id = keyId(wr.key);
    const cur = w.bindings.get(id);
    if (wr.op === "create" ? cur !== undefined : cur?.revision !== wr.revision) throw new Error(`stale ${id}`);
    if (wr.op === "delete") w.bindings.delete(id);
    else w.bindings.set(id, { record: wr.record, revision: ++rev });
  }
}

/** A laptop (Armis A1, MAC M1) and its USB NIC reported under an agent's id (MAC M2 only). */
function twoDevices(): World {
  const w = new World();
  w.publish(
    { device_id: "lap", mac: M1, ip: "10.0.0.5", partition: "p", metadata: { armis_device_id: "A1" }, source: "armis" },
    T0,
  );
  w.publish({ device_id: "nic", mac: M2, ip: "10.0.0.6", partition: "p", source: "agent" }, T0);
  return w;
}

describe("manual merge and split (src/domain/operator)", () => {
  it("merge moves every key of the device, pins them, redirects its id and unites the identities", () => {
    const w = twoDevices();
    const plan = planMerge("nic", "lap", w.bindings, ctx(T0 + MIN));
    apply(w, plan);
    for (const [kind, value] of [
      ["mac", M2],
      ["partition-ip", "p:10.0.0.6"],
      ["device-id", "nic"],
    ] as const) {
      expect(w.owner(kind, value)).toBe("lap");
      expect(w.bindings.get(keyId({ kind, value }))!.record.pin).toEqual({ atMs: T0 + MIN, actor: "token:op" });
    }
    const lap = w.bindings.get(keyId({ kind: "device-id", value: "lap" }))!.record;
    expect(lap.attributes).toMatchObject({ armis_device_id: "A1", mac: `${M1},${M2}` });
    expect(lap.keys.map((k) => k.value)).toEqual(expect.arrayContaining([M1, M2, "nic", "p:10.0.0.6"]));
    // Every key of the device carries the same identity part.
    const hashes = new Set(
      [...w.bindings.values()].filter((b) => b.record.canonicalDeviceId === "lap").map((b) => b.record.metadataHash),
    );
    expect(hashes.size).toBe(1);
    expect(
      plan.changes.every((c) => c.reason === "manual_merge" && c.fromDeviceId === "nic" && c.toDeviceId === "lap"),
    ).toBe(true);
  });

  it("a merge interrupted part-way completes when planned again on what it left, and changes only what is left", () => {
    const w = twoDevices();
    const first = planMerge("nic", "lap", w.bindings, ctx(T0 + MIN));
    apply(w, first, 2);
    const second = planMerge("nic", "lap", w.bindings, ctx(T0 + 2 * MIN));
    expect(second.changes.length).toBe(first.changes.length - 2);
    apply(w, second);
    expect(w.owner("mac", M2)).toBe("lap");
    expect(w.owner("device-id", "nic")).toBe("lap");
  });

  it("merge is refused for the device itself, a missing device, a redirect, and devices whose Armis ids differ", () => {
    const w = twoDevices();
    w.publish(
      { device_id: "other", mac: "02:00:00:00:06:09", metadata: { armis_device_id: "A2" }, source: "armis" },
      T0,
    );
    expect(() => planMerge("lap", "lap", w.bindings, ctx(T0))).toThrow(InvalidArgument);
    expect(() => planMerge("ghost", "lap", w.bindings, ctx(T0))).toThrow(NotFound);
    expect(() => planMerge("other", "lap", w.bindings, ctx(T0))).toThrowError(/armis-id/);
    apply(w, planMerge("nic", "lap", w.bindings, ctx(T0)));
    expect(() => planMerge("lap", "nic", w.bindings, ctx(T0))).toThrowError(/merged into lap/);
  });

  it("split makes the named keys a new device; a redirect id among them names it; the old device loses those identifiers", () => {
    const w = twoDevices();
    apply(w, planMerge("nic", "lap", w.bindings, ctx(T0 + MIN)));
    const keys = [
      { kind: "mac", value: M2 },
      { kind: "device-id", value: "nic" },
    ] as const;
    const plan = planSplit("lap", keys, w.bindings, ctx(T0 + 2 * MIN));
    expect(plan.newDeviceId).toBe("nic");
    apply(w, plan);
    expect(w.owner("mac", M2)).toBe("nic");
    expect(w.owner("device-id", "nic")).toBe("nic");
    expect(w.owner("mac", M1)).toBe("lap");
    const nic = w.bindings.get(keyId({ kind: "device-id", value: "nic" }))!.record;
    expect([nic.attributes.mac, nic.pin?.actor, nic.keys.map((k) => k.value)]).toEqual([M2, "token:op", [M2]]);
    const lap = w.bindings.get(keyId({ kind: "device-id", value: "lap" }))!.record;
    expect(lap.attributes.mac).toBe(M1);
    expect(lap.keys.some((k) => k.value === M2 || k.value === "nic")).toBe(false);
  });

  it("split names a new device deterministically from its keys, and refuses a key the device does not hold", () => {
    const w = twoDevices();
    const keys = [{ kind: "partition-ip", value: "p:10.0.0.5" }] as const;
    expect(splitDeviceId("lap", keys)).toBe(splitDeviceId("lap", [...keys]));
    expect(splitDeviceId("lap", keys)).toMatch(/^lap~split-[0-9a-f]{8}$/);
    expect(() => planSplit("lap", [{ kind: "mac", value: M2 }], w.bindings, ctx(T0))).toThrow(
      expect.objectContaining({ field: "keys[0]" }),
    );
    expect(() => planSplit("lap", [{ kind: "device-id", value: "lap" }], w.bindings, ctx(T0))).toThrow(
      expect.objectContaining({ field: "keys[0]" }),
    );
    expect(() => planSplit("lap", [], w.bindings, ctx(T0))).toThrow(expect.objectContaining({ field: "keys" }));
  });
});

describe("pins in the resolution rules (design.md §3, ADR 0016)", () => {
  const pinned = () => {
    const w = twoDevices();
    apply(w, planPin("nic", { kind: "mac", value: M2 }, w.bindings, ctx(T0 + MIN)));
    return w;
  };
  // The kind of sighting that would have moved the MAC: the laptop reporting both MACs.
  const sameStrength = { device_id: "lap", mac: `${M1},${M2}`, source: "agent" };
  const stronger = { ...sameStrength, metadata: { armis_device_id: "A1" }, source: "armis" };

  it("without a pin, those sightings move the MAC (so the tests below can tell a pin from nothing)", () => {
    const w = twoDevices();
    w.publish(sameStrength, T0 + HOUR);
    expect(w.owner("mac", M2)).toBe("lap");
  });

  it("a sighting asserting no more than the binding's evidence cannot move a pinned key: a weaker assertion", () => {
    const w = pinned();
    const d = w.publish(sameStrength, T0 + HOUR);
    expect(w.owner("mac", M2)).toBe("nic");
    expect(d.conflicts).toEqual([{ key: { kind: "mac", value: M2 }, reason: "weaker_assertion" }]);
  });

  it("a stronger one is refused as a pin conflict naming the device that holds the pin", () => {
    const w = pinned();
    const d = w.publish(stronger, T0 + HOUR);
    expect(w.owner("mac", M2)).toBe("nic");
    expect(d.conflicts).toEqual([{ key: { kind: "mac", value: M2 }, reason: "pinned", heldBy: "nic" }]);
  });

  it("the pin stays with the binding while its device's identity changes, and unpin lifts it", () => {
    const w = pinned();
    w.publish({ device_id: "nic", mac: M2, hostname: "renamed", source: "agent" }, T0 + HOUR);
    expect(w.bindings.get(keyId({ kind: "mac", value: M2 }))!.record.pin).toBeDefined();
    apply(w, planUnpin("nic", { kind: "mac", value: M2 }, w.bindings, ctx(T0 + 2 * HOUR)));
    expect(() => planUnpin("nic", { kind: "mac", value: M2 }, w.bindings, ctx(T0 + 2 * HOUR))).toThrow(NotFound);
    w.publish(stronger, T0 + 3 * HOUR);
    expect(w.owner("mac", M2)).toBe("lap");
  });

  it("a device whose id is pinned is not merged back through its own id by a sighting sharing its MAC", () => {
    const w = twoDevices();
    const apart = { device_id: "nic", mac: M2, metadata: { armis_device_id: "A1" }, source: "armis" };
    expect(w.decision(apart, T0 + HOUR)).toMatchObject({ trace: { own_id: "merged" } });
    apply(w, planPin("nic", { kind: "device-id", value: "nic" }, w.bindings, ctx(T0 + MIN)));
    apply(w, planPin("nic", { kind: "mac", value: M2 }, w.bindings, ctx(T0 + MIN)));
    const d = w.publish(apart, T0 + HOUR);
    expect(d.trace.own_id).toBe("pinned_apart");
    expect(w.owner("device-id", "nic")).toBe("nic");
  });

  it("a pinned address is not pruned when its source reports the device at another address", () => {
    const unpinnedWorld = twoDevices();
    unpinnedWorld.publish({ device_id: "nic", mac: M2, ip: "10.0.0.7", partition: "p", source: "agent" }, T0 + HOUR);
    expect(unpinnedWorld.owner("partition-ip", "p:10.0.0.6")).toBeUndefined();
    const w = twoDevices();
    apply(w, planPin("nic", { kind: "partition-ip", value: "p:10.0.0.6" }, w.bindings, ctx(T0 + MIN)));
    w.publish({ device_id: "nic", mac: M2, ip: "10.0.0.7", partition: "p", source: "agent" }, T0 + HOUR);
    expect(w.owner("partition-ip", "p:10.0.0.6")).toBe("nic");
    expect(w.owner("partition-ip", "p:10.0.0.7")).toBe("nic");
    const nic = w.bindings.get(keyId({ kind: "device-id", value: "nic" }))!.record;
    expect(nic.keys.map((k) => k.value)).toEqual(expect.arrayContaining(["p:10.0.0.6", "p:10.0.0.7"]));
  });

  it("pinning a key the device does not hold names the field", () => {
    const w = twoDevices();
    expect(() => planPin("lap", { kind: "mac", value: M2 }, w.bindings, ctx(T0))).toThrow(
      expect.objectContaining({ field: "key" }),
    );
  });
});
