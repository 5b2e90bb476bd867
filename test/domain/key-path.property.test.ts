import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeSegment, encodeSegment, keyPath, parseKeyPath } from "../../src/domain/key-path.js";
import { IDENTITY_KINDS } from "../../src/domain/identity-kind.js";

/** NATS KV key rules (ecosystem.md): [-/_=.A-Za-z0-9]+, no leading or trailing dot, no "..". */
const NATS_KEY = /^[-/_=.A-Za-z0-9]+$/;
const natsLegal = (k: string) => NATS_KEY.test(k) && !k.startsWith(".") && !k.endsWith(".") && !k.includes("..");

// Arbitrary JS strings, lone surrogates included (JSON can carry them).
const anyString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: fc.constantFrom(".", "=", "/", ":", "a", "%", " ", "\u0000", "\ud800", "\udc00"), maxLength: 12 }),
);

describe("key path encoding properties", () => {
  it("decode(encode(v)) == v for every string", () => {
    fc.assert(
      fc.property(anyString, (v) => {
        expect(decodeSegment(encodeSegment(v))).toBe(v);
      }),
      { numRuns: 5000 },
    );
  });

  it("is injective: different values never share a path", () => {
    fc.assert(
      fc.property(anyString, anyString, (a, b) => {
        fc.pre(a !== b);
        expect(encodeSegment(a)).not.toBe(encodeSegment(b));
      }),
      { numRuns: 5000 },
    );
  });

  it("every encoded path is a legal NATS KV key, and parses back to its key", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...IDENTITY_KINDS),
        anyString.filter((s) => s.length > 0),
        (kind, value) => {
          const path = keyPath("device_canonical_map", { kind, value });
          expect(natsLegal(path)).toBe(true);
          expect(parseKeyPath(path)).toEqual({ namespace: "device_canonical_map", key: { kind, value } });
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("hostile values: dots, wildcards, NUL, $JS.API, 8 KB", () => {
    for (const v of [
      "..",
      ".",
      "a..b",
      "*",
      ">",
      "\u0000",
      "$JS.API.STREAM.DELETE",
      "x".repeat(8192),
      "..a.",
      "a/b/c",
    ]) {
      const p = keyPath("ns", { kind: "device-id", value: v });
      expect(natsLegal(p)).toBe(true);
      expect(parseKeyPath(p).key.value).toBe(v);
    }
  });

  it("decoding refuses text the encoder cannot produce", () => {
    for (const bad of ["=G1", "=3", "a b", "=C3", "=ED=A0=80=ED=B0=80"]) expect(() => decodeSegment(bad)).toThrow();
  });
});
