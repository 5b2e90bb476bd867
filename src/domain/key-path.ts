import { KeyPathError } from "./errors.js";
import { parseKind, type IdentityKind } from "./identity-kind.js";
import type { IdentityKey } from "./identity-key.js";

export const DEFAULT_NAMESPACE = "device_canonical_map";

/**
 * Injective, reversible encoding of one path segment.
 *
 * `[A-Za-z0-9_-]` stay as they are; `.` stays unless it would start or end the segment or touch
 * another `.` (NATS subjects split on dots and refuse empty tokens); every other byte of the value's
 * UTF-8 form becomes `=XX`, upper-case hex. `=` itself is always escaped, so decoding is unambiguous:
 * the reference left `=` and `/` alone, which made `x=3Ay` and `x:y` collide.
 *
 * Lone UTF-16 surrogates (legal in a JS string, and in JSON) are written as their 3-byte WTF-8 form,
 * so even those round-trip.
 */
export function encodeSegment(value: string): string {
  // Runs of literal characters are copied as slices, not a character at a time (issue 13: a key path
  // built per character was the largest allocation of a new key); a value with nothing to escape is
  // returned as it is.
  let out = "";
  let from = 0;
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x2d)
      continue;
    if (c === 0x2e && i > 0 && i < n - 1 && value.charCodeAt(i - 1) !== 0x2e && value.charCodeAt(i + 1) !== 0x2e)
      continue;
    out += value.slice(from, i);
    let cp = c;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = value.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (cp < 0x80) out += ESCAPED[cp]!;
    else for (const b of utf8Bytes(cp)) out += ESCAPED[b]!;
    from = i + 1;
  }
  return from === 0 ? value : out + value.slice(from);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).toUpperCase().padStart(2, "0"));
/** `=XX` of every byte. */
const ESCAPED = HEX.map((h) => `=${h}`);

function utf8Bytes(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 63)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
}

export { KeyPathError };

const LITERAL = /[A-Za-z0-9_.-]/;

/** Inverse of encodeSegment. Throws KeyPathError on text encodeSegment cannot produce. */
export function decodeSegment(segment: string): string {
  let out = "";
  const bytes: number[] = [];
  const flush = () => {
    if (bytes.length) {
      out += decodeWtf8(bytes);
      bytes.length = 0;
    }
  };
  for (let i = 0; i < segment.length; ) {
    const ch = segment[i]!;
    if (ch === "=") {
      const h = segment.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(h)) throw new KeyPathError(`bad escape at ${i} in ${JSON.stringify(segment)}`);
      bytes.push(parseInt(h, 16));
      i += 3;
    } else if (LITERAL.test(ch)) {
      flush();
      out += ch;
      i++;
    } else throw new KeyPathError(`illegal character ${JSON.stringify(ch)} in ${JSON.stringify(segment)}`);
  }
  flush();
  return out;
}

function decodeWtf8(b: readonly number[]): string {
  let out = "";
  for (let i = 0; i < b.length; ) {
    const x = b[i]!;
    let cp: number;
    let len: number;
    if (x < 0x80) [cp, len] = [x, 1];
    else if (x >= 0xc2 && x < 0xe0) [cp, len] = [x & 31, 2];
    else if (x >= 0xe0 && x < 0xf0) [cp, len] = [x & 15, 3];
    else if (x >= 0xf0 && x < 0xf5) [cp, len] = [x & 7, 4];
    else throw new KeyPathError(`invalid UTF-8 lead byte ${x}`);
    if (i + len > b.length) throw new KeyPathError("truncated UTF-8 sequence");
    for (let j = 1; j < len; j++) {
      const y = b[i + j]!;
      if ((y & 0xc0) !== 0x80) throw new KeyPathError("invalid UTF-8 continuation");
      cp = (cp << 6) | (y & 63);
    }
    const min = len === 2 ? 0x80 : len === 3 ? 0x800 : len === 4 ? 0x10000 : 0;
    if (cp < min || cp > 0x10ffff) throw new KeyPathError("overlong or out-of-range UTF-8");
    // A surrogate pair must have been encoded as one 4-byte code point; two 3-byte halves would
    // decode to the same string and break injectivity.
    if (cp >= 0xd800 && cp <= 0xdbff && b[i + len] === 0xed && (b[i + len + 1]! & 0xf0) === 0xb0) {
      throw new KeyPathError("surrogate pair written as two halves");
    }
    out += String.fromCodePoint(cp);
    i += len;
  }
  return out;
}

const NAMESPACE = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/;

/** Namespaces come from config; they are validated, not escaped, so operators see them as written. */
export function validateNamespace(ns: string): string {
  const trimmed = ns.trim().replace(/^\/+|\/+$/g, "");
  const value = trimmed === "" ? DEFAULT_NAMESPACE : trimmed;
  if (!NAMESPACE.test(value)) {
    throw new KeyPathError(`namespace ${JSON.stringify(ns)} must be segments of [A-Za-z0-9_-] joined by "/"`);
  }
  return value;
}

/** `<namespace>/<kind>/<encoded value>` */
export function keyPath(namespace: string, key: IdentityKey): string {
  return `${namespace}/${key.kind}/${encodeSegment(key.value)}`;
}

/** The prefix under which every binding of one kind lives (with trailing slash). */
export function kindPrefix(namespace: string, kind: IdentityKind): string {
  return `${namespace}/${kind}/`;
}

/** Inverse of keyPath. */
export function parseKeyPath(path: string): { namespace: string; key: IdentityKey } {
  const last = path.lastIndexOf("/");
  const prev = path.lastIndexOf("/", last - 1);
  if (last < 0 || prev < 0) throw new KeyPathError(`not a binding path: ${JSON.stringify(path)}`);
  const kind = parseKind(path.slice(prev + 1, last));
  if (!kind) throw new KeyPathError(`unknown kind in ${JSON.stringify(path)}`);
  return { namespace: path.slice(0, prev), key: { kind, value: decodeSegment(path.slice(last + 1)) } };
}
