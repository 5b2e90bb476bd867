import { describe, expect, it } from "vitest";
import { decodeRecord, encodeRecord } from "../../src/adapters/proto/record-codec.js";
import type { CanonicalRecord } from "../../src/domain/record.js";

const record: CanonicalRecord = {
  canonicalDeviceId: "p:10.0.0.9",
  partition: "p",
  metadataHash: "h",
  updatedAtMs: 1_780_000_000_000,
  attributes: {},
  assertedBy: "partition-ip",
  source: "sweep",
  authority: false,
  expiresAtMs: 1_780_086_400_000,
  operationId: "op-1",
  keys: [{ kind: "partition-ip", value: "p:10.0.0.9", sources: [] }],
};

describe("record codec: the provisional flag (field 12)", () => {
  it("round-trips a provisional device's first sighting", () => {
    const r = { ...record, provisionalSinceMs: 1_780_000_000_000 };
    expect(decodeRecord(encodeRecord(r))).toEqual(r);
  });
  it("a record without it (every record written before it existed) decodes as not provisional", () => {
    const decoded = decodeRecord(encodeRecord(record));
    expect(decoded).toEqual(record);
    expect(decoded.provisionalSinceMs).toBeUndefined();
  });
});
