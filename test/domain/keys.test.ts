import { describe, expect, it } from "vitest";
import { normalizeUpdate, type DeviceUpdate } from "../../src/domain/device-update.js";
import { prioritizeKeys, type IdentityKey } from "../../src/domain/identity-key.js";
import { DEFAULT_NAMESPACE, keyPath, validateNamespace } from "../../src/domain/key-path.js";
import { hashMetadata } from "../../src/domain/metadata-hash.js";
import { identityHash } from "../../src/domain/record.js";

const keys = (u: DeviceUpdate) => normalizeUpdate(u, { nowMs: 1 }).keys;
const sorted = (ks: readonly IdentityKey[]) => [...ks].sort((a, b) => (a.kind + a.value < b.kind + b.value ? -1 : 1));

// The reference's cases (go-reference.md §8.1), adapted where design.md deliberately differs.
describe("key derivation (reference TestBuildKeys and friends)", () => {
  it("TestBuildKeys: every identifier becomes its key; unrelated metadata does not", () => {
    const got = keys({
      device_id: "tenant-a:1.2.3.4",
      ip: "1.2.3.4",
      partition: "tenant-a",
      mac: "aa:bb:cc:dd:ee:ff",
      metadata: {
        armis_device_id: "armis-123",
        integration_type: "netbox",
        integration_id: "nb-42",
        netbox_device_id: "123",
        extra_unrelated: "ignored",
      },
    });
    expect(sorted(got)).toEqual(
      sorted([
        { kind: "device-id", value: "tenant-a:1.2.3.4" },
        { kind: "ip", value: "1.2.3.4" },
        { kind: "partition-ip", value: "tenant-a:1.2.3.4" },
        { kind: "armis-id", value: "armis-123" },
        { kind: "netbox-id", value: "nb-42" },
        { kind: "netbox-id", value: "123" },
        { kind: "mac", value: "AA:BB:CC:DD:EE:FF" },
      ]),
    );
  });

  it("TestBuildKeysNil (adapted): an empty update has no keys", () => {
    expect(keys({})).toEqual([]);
  });

  it("TestBuildKeysIncludesIPWhenDistinct", () => {
    const got = keys({ device_id: "device-123", ip: "10.0.0.5", partition: "tenant-a", mac: "aa:bb:cc:dd:ee:ff" });
    expect(got).toContainEqual({ kind: "ip", value: "10.0.0.5" });
    expect(got).toContainEqual({ kind: "partition-ip", value: "tenant-a:10.0.0.5" });
  });

  it("values are trimmed, empties dropped, duplicates removed; same value under two kinds stays twice", () => {
    const got = keys({
      device_id: " tenant-a:1.2.3.4 ",
      ip: " 1.2.3.4",
      partition: "tenant-a",
      metadata: { armis_device_id: "  " },
    });
    expect(got).toEqual([
      { kind: "device-id", value: "tenant-a:1.2.3.4" },
      { kind: "ip", value: "1.2.3.4" },
      { kind: "partition-ip", value: "tenant-a:1.2.3.4" },
    ]);
  });

  it("an empty partition gives partition-ip equal to the bare ip (8.7)", () => {
    expect(keys({ device_id: "d", ip: "10.1.1.1" })).toContainEqual({ kind: "partition-ip", value: "10.1.1.1" });
  });

  it("integration_type NetBox matches in any case; integration_id is no key for other integrations", () => {
    expect(keys({ device_id: "d", metadata: { integration_type: "NetBox", integration_id: "7" } })).toContainEqual({
      kind: "netbox-id",
      value: "7",
    });
    expect(
      keys({ device_id: "d", metadata: { integration_type: "armis", integration_id: "1", armis_device_id: "1" } }),
    ).toEqual([
      { kind: "device-id", value: "d" },
      { kind: "armis-id", value: "1" },
    ]);
  });

  it("NetBox ids that are equal dedupe to one key (NetBox worked example)", () => {
    const got = keys({
      device_id: "part:10.0.0.1",
      ip: "10.0.0.1/32",
      partition: "part",
      source: "netbox",
      metadata: { integration_type: "netbox", integration_id: "1", netbox_device_id: "1" },
    });
    expect(got.filter((k) => k.kind === "netbox-id")).toEqual([{ kind: "netbox-id", value: "1" }]);
    expect(got).toContainEqual({ kind: "ip", value: "10.0.0.1" });
  });

  it("a MAC list with dashes, colons, a bad token and a duplicate gives one key (8.7)", () => {
    const u = normalizeUpdate({ device_id: "d", mac: "aa-bb-cc-dd-ee-ff, AA:BB:CC:DD:EE:FF;bad" }, { nowMs: 1 });
    expect(u.keys.filter((k) => k.kind === "mac")).toEqual([{ kind: "mac", value: "AA:BB:CC:DD:EE:FF" }]);
    expect(u.rejected).toEqual([{ field: "mac", value: "bad", reason: "invalid_mac" }]);
  });

  it("differs from the reference on purpose: bare 12-hex MACs are accepted (8.7 said rejected)", () => {
    expect(keys({ device_id: "d", mac: "aabbccddeeff" })).toContainEqual({ kind: "mac", value: "AA:BB:CC:DD:EE:FF" });
  });

  it("without a device id the update is named by its address", () => {
    expect(keys({ ip: "10.0.0.7", partition: "p" })[0]).toEqual({ kind: "device-id", value: "p:10.0.0.7" });
  });

  it("PrioritizeKeys: Armis, NetBox, MAC, partition-ip, ip, device-id; ties by value", () => {
    const ks: IdentityKey[] = [
      { kind: "device-id", value: "d" },
      { kind: "ip", value: "1.1.1.1" },
      { kind: "mac", value: "BB" },
      { kind: "partition-ip", value: "p:1.1.1.1" },
      { kind: "netbox-id", value: "2" },
      { kind: "mac", value: "AA" },
      { kind: "armis-id", value: "a" },
    ];
    expect(prioritizeKeys(ks).map((k) => `${k.kind}:${k.value}`)).toEqual([
      "armis-id:a",
      "netbox-id:2",
      "mac:AA",
      "mac:BB",
      "partition-ip:p:1.1.1.1",
      "ip:1.1.1.1",
      "device-id:d",
    ]);
  });
});

describe("key paths (reference TestKeyPath, TestKeyPathSanitizesDisallowedCharacters)", () => {
  it("default and custom namespaces", () => {
    expect(keyPath(validateNamespace(""), { kind: "armis-id", value: "armis-123" })).toBe(
      "device_canonical_map/armis-id/armis-123",
    );
    expect(keyPath(validateNamespace("/custom/"), { kind: "armis-id", value: "armis-123" })).toBe(
      "custom/armis-id/armis-123",
    );
    expect(DEFAULT_NAMESPACE).toBe("device_canonical_map");
  });

  it("keeps the reference's look for common values", () => {
    expect(keyPath(DEFAULT_NAMESPACE, { kind: "mac", value: "AA:BB:CC:DD:EE:FF" })).toBe(
      "device_canonical_map/mac/AA=3ABB=3ACC=3ADD=3AEE=3AFF",
    );
    expect(keyPath(DEFAULT_NAMESPACE, { kind: "ip", value: "fe80::1" })).toBe("device_canonical_map/ip/fe80=3A=3A1");
    expect(keyPath(DEFAULT_NAMESPACE, { kind: "device-id", value: "tenant-a:1.2.3.4" })).toBe(
      "device_canonical_map/device-id/tenant-a=3A1.2.3.4",
    );
  });

  it("differs from the reference on purpose: = and / are escaped, bytes are two hex digits each", () => {
    expect(keyPath(DEFAULT_NAMESPACE, { kind: "device-id", value: "x=3Ay" })).toBe(
      "device_canonical_map/device-id/x=3D3Ay",
    );
    expect(keyPath(DEFAULT_NAMESPACE, { kind: "device-id", value: "a/b" })).toBe(
      "device_canonical_map/device-id/a=2Fb",
    );
    expect(keyPath(DEFAULT_NAMESPACE, { kind: "device-id", value: "\t" })).toBe("device_canonical_map/device-id/=09");
    expect(keyPath(DEFAULT_NAMESPACE, { kind: "device-id", value: "é" })).toBe("device_canonical_map/device-id/=C3=A9");
  });

  it("refuses namespaces that are not plain segments", () => {
    expect(() => validateNamespace("a b")).toThrow();
    expect(() => validateNamespace("x..y")).toThrow();
  });
});

describe("metadata hash", () => {
  it("matches the reference's framing vectors", () => {
    expect(hashMetadata({ a: "one", b: "two" })).toBe(
      "cebcba5e9000551a327c114fa8f8ea2864a34837907401391d11484dbadb668d",
    );
    expect(hashMetadata({ armis_device_id: "armis-1" })).toBe(
      "51889f015514d96c2aaea018bb8741c1be78e0b9581982a4cc1b300a790d5958",
    );
    expect(hashMetadata({ armis_device_id: "armis-123", device_id: "device-1" })).toBe(
      "25e4f992ad9e036d880687f996fa44a050063de01f71aeb477985a6522257a3b",
    );
  });

  it("TestHashMetadataDeterministic: key order does not matter; empty is empty", () => {
    expect(hashMetadata({ b: "two", a: "one" })).toBe(hashMetadata({ a: "one", b: "two" }));
    expect(hashMetadata({})).toBe("");
  });

  it("the identity hash changes with a canonical field (TestHashIdentityMetadataChangesOnCanonicalFields)", () => {
    const h1 = identityHash("device-1", "", { armis_device_id: "armis-123" });
    expect(h1).not.toBe("");
    expect(identityHash("device-1", "", { armis_device_id: "armis-124" })).not.toBe(h1);
  });
});
