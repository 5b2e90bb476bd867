import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normalizeIp } from "../../src/domain/ip.js";
import { normalizeMac } from "../../src/domain/mac.js";
import { normalizeUpdate } from "../../src/domain/device-update.js";

describe("MAC normalization", () => {
  it.each([
    ["aa:bb:cc:dd:ee:ff", "AA:BB:CC:DD:EE:FF"],
    ["AA-BB-CC-DD-EE-0F", "AA:BB:CC:DD:EE:0F"],
    ["aabb.ccdd.eeff", "AA:BB:CC:DD:EE:FF"],
    ["aabbccddeeff", "AA:BB:CC:DD:EE:FF"],
    [" 00:1a:2b:3c:4d:5e ", "00:1A:2B:3C:4D:5E"],
  ])("%s -> %s", (raw, want) => {
    expect(normalizeMac(raw)).toEqual({ ok: true, mac: want });
  });

  it.each([
    ["aa:bb", "invalid_mac"],
    ["aa:bb-cc:dd:ee:ff", "invalid_mac"],
    ["gg:bb:cc:dd:ee:ff", "invalid_mac"],
    ["00:00:00:00:00:00", "zero_mac"],
    ["ff:ff:ff:ff:ff:ff", "broadcast_mac"],
    ["01:00:5e:00:00:fb", "multicast_mac"],
    ["33:33:00:00:00:01", "multicast_mac"],
    ["03:00:00:00:00:01", "multicast_mac"],
    ["00:00:5e:00:01:07", "vrrp_mac"],
    ["00:00:5e:00:02:01", "vrrp_mac"],
    ["00:00:0c:07:ac:01", "hsrp_mac"],
    ["00:00:0c:9f:f0:01", "hsrp_mac"],
  ])("%s is refused as %s", (raw, reason) => {
    expect(normalizeMac(raw)).toEqual({ ok: false, reason });
  });

  it("a configured deny list refuses a MAC", () => {
    expect(normalizeMac("02:00:00:00:00:01", new Set(["02:00:00:00:00:01"]))).toEqual({ ok: false, reason: "denied" });
  });

  it("identifiers that cannot identify never become keys and are listed with their reason", () => {
    const u = normalizeUpdate({ device_id: "d", mac: "00:00:5e:00:01:07, aa:bb:cc:dd:ee:ff" }, { nowMs: 1 });
    expect(u.macs).toEqual(["AA:BB:CC:DD:EE:FF"]);
    expect(u.rejected).toEqual([{ field: "mac", value: "00:00:5e:00:01:07", reason: "vrrp_mac" }]);
  });

  it("is idempotent", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), fc.constantFrom(":", "-", "", "."), (bytes, sep) => {
        const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0"));
        const raw = sep === "." ? `${hex[0]}${hex[1]}.${hex[2]}${hex[3]}.${hex[4]}${hex[5]}` : hex.join(sep);
        const once = normalizeMac(raw);
        if (!once.ok) return true;
        expect(normalizeMac(once.mac)).toEqual(once);
        return true;
      }),
    );
  });
});

describe("IP normalization", () => {
  it.each([
    ["10.0.0.1", "10.0.0.1"],
    [" 10.0.0.1/32 ", "10.0.0.1"],
    ["FE80:0000:0000:0000:0000:0000:0000:0001", "fe80::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0db8::0001/128", "2001:db8::1"],
    ["::", "::"],
    ["::ffff:10.1.2.3", "::ffff:10.1.2.3"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
  ])("%s -> %s", (raw, want) => {
    expect(normalizeIp(raw)).toBe(want);
  });

  it.each(["10.0.0.256", "10.0.0", "010.0.0.1", "10.0.0.0/24", "fe80::1%eth0", "1::2::3", "hello", "2001:db8::/64"])(
    "%s is refused",
    (raw) => {
      expect(normalizeIp(raw)).toBeUndefined();
    },
  );

  it("an invalid IP is listed and the update's other identifiers still count", () => {
    const u = normalizeUpdate({ device_id: "d", ip: "10.0.0.999", mac: "aa:bb:cc:dd:ee:ff" }, { nowMs: 1 });
    expect(u.rejected).toEqual([{ field: "ip", value: "10.0.0.999", reason: "invalid_ip" }]);
    expect(u.keys.map((k) => k.kind)).toEqual(["device-id", "mac"]);
  });

  it("is idempotent for IPv4 and IPv6", () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (raw) => {
        const once = normalizeIp(raw);
        expect(once).toBeDefined();
        expect(normalizeIp(once!)).toBe(once);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("edge limits", () => {
  it("an identifier over 256 bytes is refused; metadata over 16 KiB is dropped with a reason", () => {
    const u = normalizeUpdate(
      { device_id: "x".repeat(300), ip: "10.0.0.1", metadata: { big: "y".repeat(17 * 1024), armis_device_id: "a" } },
      { nowMs: 1 },
    );
    expect(u.rejected.map((r) => `${r.field}:${r.reason}`)).toEqual([
      "metadata:metadata_too_large",
      "device_id:too_long",
    ]);
    expect(u.armisId).toBe("");
    expect(u.deviceId).toBe("10.0.0.1");
  });
});
