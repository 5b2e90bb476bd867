import { describe, expect, it } from "vitest";
import { identityMapRoot } from "../../src/adapters/proto/proto-root.js";
import { decodeRecord, encodeRecord } from "../../src/adapters/proto/record-codec.js";
import { IDENTITY_KINDS, KIND_WIRE_NUMBER } from "../../src/domain/identity-kind.js";
import type { CanonicalRecord } from "../../src/domain/record.js";

/** protobufjs's bytes for the record, built as record-codec.ts built them before the hand-written writer. */
const Type = identityMapRoot().lookupType("identitymap.v1.CanonicalRecord");
function reference(r: CanonicalRecord): Uint8Array {
  const attributes = Object.keys(r.attributes)
    .sort()
    .map((key) => ({ key, value: r.attributes[key]! }));
  return Type.encode({
    canonicalDeviceId: r.canonicalDeviceId,
    partition: r.partition,
    metadataHash: r.metadataHash,
    updatedAtUnixMillis: r.updatedAtMs,
    attributes,
    assertedBy: r.assertedBy ? KIND_WIRE_NUMBER[r.assertedBy] : 0,
    source: r.source,
    authority: r.authority,
    expiresAtUnixMillis: r.expiresAtMs,
    operationId: r.operationId,
    keys: r.keys.map((k) => ({ kind: KIND_WIRE_NUMBER[k.kind], value: k.value, sources: k.sources as string[] })),
    provisionalSinceUnixMillis: r.provisionalSinceMs ?? 0,
    sharedRebindsUnixMillis: (r.sharedRebindsMs ?? []) as number[],
    quarantinedSinceUnixMillis: r.quarantinedSinceMs ?? 0,
    contenders: (r.contenders ?? []) as string[],
    ...(r.pin ? { pinnedAtUnixMillis: r.pin.atMs, pinnedBy: r.pin.actor } : {}),
  }).finish();
}

/** A small deterministic generator (mulberry32), so a failure names a reproducible case. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ["a", "Z9", "-", ":", "é", "ß", "中", "😀", "\ud800", "\udc00", "10.0.0.1", "p1", " ", "\u0000"];

function text(r: () => number, maxPieces: number): string {
  const n = Math.floor(r() * maxPieces);
  let s = "";
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)]!;
  return s;
}

function num(r: () => number): number {
  const pick = r();
  if (pick < 0.2) return 0;
  if (pick < 0.3) return Math.floor(r() * 128);
  if (pick < 0.4) return -Math.floor(r() * 1e12);
  if (pick < 0.5) return Number.MAX_SAFE_INTEGER - Math.floor(r() * 1000);
  return 1_700_000_000_000 + Math.floor(r() * 1e11);
}

function randomRecord(r: () => number): CanonicalRecord {
  const long = r() < 0.3 ? 60 : 6;
  const attributes: Record<string, string> = {};
  for (let i = Math.floor(r() * 5); i > 0; i--) attributes[text(r, 4)] = text(r, long);
  const keys = [];
  for (let i = Math.floor(r() * (r() < 0.1 ? 40 : 6)); i > 0; i--) {
    const sources = [];
    for (let j = Math.floor(r() * 3); j > 0; j--) sources.push(text(r, 3));
    keys.push({ kind: IDENTITY_KINDS[Math.floor(r() * IDENTITY_KINDS.length)]!, value: text(r, long), sources });
  }
  const opt = <T>(v: T) => (r() < 0.5 ? v : undefined);
  const provisionalSinceMs = opt(num(r));
  const sharedRebindsMs = opt(Array.from({ length: Math.floor(r() * 30) }, () => num(r)));
  const quarantinedSinceMs = opt(num(r));
  const contenders = opt(Array.from({ length: Math.floor(r() * 4) }, () => text(r, 5)));
  const pin = opt({ atMs: num(r), actor: text(r, long) });
  const assertedBy = opt(IDENTITY_KINDS[Math.floor(r() * IDENTITY_KINDS.length)]!);
  return {
    canonicalDeviceId: text(r, long),
    partition: text(r, 3),
    metadataHash: r() < 0.1 ? "" : "h".repeat(Math.floor(r() * 70)),
    updatedAtMs: num(r),
    attributes,
    ...(assertedBy ? { assertedBy } : {}),
    source: text(r, 3),
    authority: r() < 0.5,
    expiresAtMs: num(r),
    operationId: text(r, long),
    keys,
    ...(provisionalSinceMs !== undefined ? { provisionalSinceMs } : {}),
    ...(sharedRebindsMs ? { sharedRebindsMs } : {}),
    ...(quarantinedSinceMs !== undefined ? { quarantinedSinceMs } : {}),
    ...(contenders ? { contenders } : {}),
    ...(pin ? { pin } : {}),
  };
}

describe("record writer: the same bytes as protobufjs", () => {
  it("for 5000 generated records (unicode, lone surrogates, long strings and indexes, 64-bit and negative times)", () => {
    const r = rng(13);
    let nested128 = 0;
    for (let i = 0; i < 5000; i++) {
      const rec = randomRecord(r);
      const want = Buffer.from(reference(rec));
      const got = Buffer.from(encodeRecord(rec));
      if (!got.equals(want))
        expect({ case: i, got: got.toString("hex") }).toEqual({ case: i, got: want.toString("hex") });
      if (rec.keys.some((k) => Buffer.byteLength(k.value) > 128)) nested128++;
    }
    // The generator reaches nested messages whose length needs a second byte.
    expect(nested128).toBeGreaterThan(0);
  });

  it("for a record with every field at its default (nothing written) and one with a pin only", () => {
    const empty: CanonicalRecord = {
      canonicalDeviceId: "",
      partition: "",
      metadataHash: "",
      updatedAtMs: 0,
      attributes: {},
      source: "",
      authority: false,
      expiresAtMs: 0,
      operationId: "",
      keys: [],
    };
    expect(Buffer.from(encodeRecord(empty)).length).toBe(0);
    const pinned = { ...empty, canonicalDeviceId: "d", pin: { atMs: 1_780_000_000_000, actor: "ops" } };
    expect(Buffer.from(encodeRecord(pinned))).toEqual(Buffer.from(reference(pinned)));
    expect(decodeRecord(encodeRecord(pinned)).pin).toEqual(pinned.pin);
  });

  it("a record longer than the writer's scratch buffer, then a short one after it", () => {
    const big: CanonicalRecord = {
      ...randomRecord(rng(1)),
      canonicalDeviceId: "d",
      keys: Array.from({ length: 2000 }, (_, i) => ({
        kind: "ip" as const,
        value: `10.0.${i >> 8}.${i & 255}`,
        sources: ["sweep"],
      })),
    };
    expect(Buffer.from(encodeRecord(big))).toEqual(Buffer.from(reference(big)));
    const small = randomRecord(rng(2));
    expect(Buffer.from(encodeRecord(small))).toEqual(Buffer.from(reference(small)));
  });
});
