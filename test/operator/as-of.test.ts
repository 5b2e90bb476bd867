import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { operatorWorld, READER_TOKEN, type OperatorWorld } from "./support.js";

const LAPTOP_MAC = "02:00:00:00:02:01";
const PHONE_MAC = "02:00:00:00:02:02";

/**
 * "Which device had 10.2.3.4 at 14:05 yesterday?" across a DHCP move: the laptop holds the address,
 * leaves it for another, then a phone gets it. The audit trail answers before, during and after.
 */
describe("as-of lookups across a DHCP move", () => {
  let w: OperatorWorld;
  const t: Record<string, number> = {};
  const iso = (ms: number) => new Date(ms).toISOString();
  const asOf = (query: string, atMs: number) =>
    w.call("GET", `/v1/canonical-devices/lookup?${query}&at=${encodeURIComponent(iso(atMs))}`, undefined, READER_TOKEN);

  beforeAll(async () => {
    w = await operatorWorld();
    t.start = w.clock.now;
    const laptop = { device_id: "laptop", mac: LAPTOP_MAC, partition: "site", source: "dhcp" };
    await w.publish([{ ...laptop, ip: "10.2.3.4", timestamp: w.clock.now }]);
    w.clock.advance(3_600_000);
    t.moved = w.clock.now;
    await w.publish([{ ...laptop, ip: "10.2.3.9", timestamp: w.clock.now }]);
    w.clock.advance(3_600_000);
    t.phone = w.clock.now;
    await w.publish([
      { device_id: "phone", mac: PHONE_MAC, partition: "site", ip: "10.2.3.4", source: "dhcp", timestamp: w.clock.now },
    ]);
    w.clock.advance(60_000);
  });
  afterAll(async () => {
    await w?.close();
  });

  it("before the move: the laptop held the address, since its first sighting, until it moved", async () => {
    const r = await asOf("ip=10.2.3.4&partition=site", t.start! + 1_800_000);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      found: true,
      device_id: "laptop",
      matched_key: { kind: "partition-ip", value: "site:10.2.3.4" },
      since_unix_millis: t.start,
      until_unix_millis: t.moved,
    });
  });

  it("during (after the laptop left, before the phone came): nobody held it, 404", async () => {
    const r = await asOf("ip=10.2.3.4&partition=site", t.moved! + 60_000);
    expect(r.status).toBe(404);
  });

  it("after: the phone holds it, with no end yet; now the plain lookup agrees", async () => {
    const r = await asOf("ip=10.2.3.4&partition=site", t.phone! + 1_000);
    expect(r.body).toMatchObject({ device_id: "phone", since_unix_millis: t.phone });
    expect(r.body.until_unix_millis).toBeUndefined();
    const now = await w.call("GET", "/v1/canonical-devices/lookup?ip=10.2.3.4&partition=site");
    expect(now.body.record.canonical_device_id).toBe("phone");
  });

  it("by the laptop's MAC in another notation, and by the new address after the move", async () => {
    const byMac = await asOf("mac=0200.0000.0201", t.moved! + 1_000);
    expect(byMac.body).toMatchObject({ device_id: "laptop", matched_key: { kind: "mac", value: LAPTOP_MAC } });
    expect((await asOf("ip=10.2.3.9&partition=site", t.start! + 1_000)).status).toBe(404);
    expect((await asOf("ip=10.2.3.9&partition=site", t.moved! + 1_000)).body.device_id).toBe("laptop");
  });

  it("before anything was seen: 404; a bad time is a 400 naming `at`", async () => {
    expect((await asOf("ip=10.2.3.4&partition=site", t.start! - 1)).status).toBe(404);
    const bad = await w.call("GET", "/v1/canonical-devices/lookup?ip=10.2.3.4&at=yesterday");
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toMatch(/at/);
  });
});
