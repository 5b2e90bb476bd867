import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Revision } from "../../src/domain/binding.js";
import { checkConsistency } from "../../src/app/check/consistency-check.js";
import type { WriteOptions } from "../../src/ports/identity-kv.js";
import { FaultyKv } from "../metrics/faults.js";
import { counterValue } from "../support/service.js";
import { operatorWorld, type OperatorWorld } from "./support.js";

/** A FaultyKv that goes down after a number of writes: an operator's merge cut off half-way. */
class DownAfterKv extends FaultyKv {
  writesLeft = Infinity;
  override async update(key: string, value: Uint8Array, revision: Revision, options?: WriteOptions) {
    if (this.writesLeft-- <= 0) this.down = true;
    return super.update(key, value, revision, options);
  }
}

const M1 = "02:00:00:00:07:01";
const M2 = "02:00:00:00:07:02";

/** KV trouble during a manual decision: 503, nothing lost, what landed audited, and a retry completes it. */
describe("operator actions when the KV misbehaves", () => {
  let w: OperatorWorld;
  const kv = new DownAfterKv();
  beforeAll(async () => {
    w = await operatorWorld({}, kv);
    await w.publish([
      {
        device_id: "pc",
        mac: M1,
        ip: "10.4.0.1",
        partition: "p",
        metadata: { armis_device_id: "A4" },
        source: "armis",
      },
      { device_id: "pc-nic", mac: M2, ip: "10.4.0.2", partition: "p", source: "agent" },
    ]);
  });
  afterAll(async () => {
    await w?.close();
  });

  it("a CAS conflict met while merging is re-planned (counted), and a lost reply is settled as our own write", async () => {
    const before = await counterValue(w.app, "identitymap_conflict_total", { reason: "revision_mismatch" });
    kv.faults.push("lost_reply", "conflict");
    const r = await w.call("POST", "/v1/canonical-devices/pc-nic/merge", { into: "pc" });
    expect(r.status).toBe(200);
    expect(await counterValue(w.app, "identitymap_conflict_total", { reason: "revision_mismatch" })).toBe(before + 1);
    expect((await w.call("GET", `/v1/canonical-devices/lookup?mac=${M2}`)).body.record.canonical_device_id).toBe("pc");
    const history = (await w.call("GET", "/v1/canonical-devices/pc/history")).body.entries;
    // Each moved key audited once, whatever the attempts.
    const merged = history
      .filter((e: any) => e.reason === "manual_merge")
      .map((e: any) => `${e.key.kind} ${e.key.value}`);
    expect(new Set(merged).size).toBe(merged.length);
    expect(merged).toContain(`mac ${M2}`);
  });

  it("the KV going down half-way through a split answers 503; what landed is audited; the retry completes it", async () => {
    kv.writesLeft = 2;
    const body = {
      keys: [
        { kind: "mac", value: M2 },
        { kind: "device-id", value: "pc-nic" },
        { kind: "ip", value: "10.4.0.2" },
      ],
    };
    const down = await w.call("POST", "/v1/canonical-devices/pc/split", body);
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe("kv_unavailable");
    const partial = (await w.call("GET", "/v1/canonical-devices/pc-nic/history")).body.entries.filter(
      (e: any) => e.reason === "manual_split",
    );
    expect(partial.length).toBeGreaterThan(0);
    kv.down = false;
    kv.writesLeft = Infinity;
    const again = await w.call("POST", "/v1/canonical-devices/pc/split", body);
    expect(again.status).toBe(200);
    expect(again.body.device_id).toBe("pc-nic");
    for (const [q, owner] of [
      [`mac=${M2}`, "pc-nic"],
      ["ip=10.4.0.2", "pc-nic"],
      [`mac=${M1}`, "pc"],
    ] as const)
      expect((await w.call("GET", `/v1/canonical-devices/lookup?${q}`)).body.record.canonical_device_id).toBe(owner);
    const findings = await checkConsistency({
      kv: w.app.store.kv,
      namespace: w.app.config.namespace,
      devices: [w.app.devices],
      nowMs: w.clock.now,
    });
    expect(findings).toEqual([]);
  });

  it("reads failing answer 503 and change nothing", async () => {
    kv.down = true;
    const r = await w.call("PUT", `/v1/canonical-devices/pc/pins/mac/${M1}`);
    kv.down = false;
    expect([r.status, r.body.error.code]).toEqual([503, "kv_unavailable"]);
    const detail = await w.call("GET", "/v1/canonical-devices/pc/detail");
    expect(detail.body.keys.find((k: any) => k.value === M1).pinned).toBeUndefined();
  });
});
