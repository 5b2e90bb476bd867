import { KIND_WIRE_NUMBER } from "../../domain/identity-kind.js";
import type { CanonicalRecord } from "../../domain/record.js";
import { sortSmall } from "../../domain/small-sort.js";

/**
 * A hand-written protobuf writer for `identitymap.v1.CanonicalRecord`: the same bytes as protobufjs's
 * generated encoder (proto3 implicit presence: a field at its default is not written; fields in
 * number order; attributes sorted by key; repeated int64 packed; strings under 40 code units by
 * protobufjs's own UTF-8 writer, longer ones by Buffer's, as protobufjs does), checked against it in
 * test/proto/record-writer.test.ts. It writes into one scratch buffer and copies the result out once,
 * where protobufjs built an operation list per field and a fork per nested message: encoding was a
 * tenth of a publish's CPU in the profiles (docs/benchmarks.md, issue 13).
 */
let buf = Buffer.allocUnsafeSlow(4096);
let pos = 0;

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  const next = Buffer.allocUnsafeSlow(Math.max(buf.length * 2, pos + n));
  buf.copy(next, 0, 0, pos);
  buf = next;
}

function varint32(v: number): void {
  v >>>= 0;
  while (v > 127) {
    buf[pos++] = (v & 127) | 128;
    v >>>= 7;
  }
  buf[pos++] = v;
}

/** protobufjs's int64 of a JS number (LongBits.fromNumber, then a 64-bit varint). */
function varint64(value: number): void {
  let lo: number;
  let hi: number;
  if (value === 0) {
    lo = 0;
    hi = 0;
  } else {
    const sign = value < 0;
    if (sign) value = -value;
    lo = value >>> 0;
    hi = ((value - lo) / 4294967296) >>> 0;
    if (sign) {
      hi = ~hi >>> 0;
      lo = ~lo >>> 0;
      if (++lo > 4294967295) {
        lo = 0;
        if (++hi > 4294967295) hi = 0;
      }
    }
  }
  while (hi) {
    buf[pos++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 127) {
    buf[pos++] = (lo & 127) | 128;
    lo >>>= 7;
  }
  buf[pos++] = lo;
}

/** A length-delimited string field, tag included. */
function stringField(tag: number, s: string): void {
  const n = s.length;
  ensure(n * 3 + 10);
  buf[pos++] = tag;
  if (n === 0) {
    buf[pos++] = 0;
    return;
  }
  // ASCII, the usual case: the length is the code unit count.
  if (n < 128) {
    let i = 0;
    const start = pos + 1;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) break;
      buf[start + i] = c;
    }
    if (i === n) {
      buf[pos] = n;
      pos = start + n;
      return;
    }
  }
  if (n < 40) {
    // protobufjs's own writer (a lone surrogate becomes three bytes of its code unit); at most 117 bytes.
    const start = pos + 1;
    const len = utf8Write(s, start);
    buf[pos] = len;
    pos = start + len;
    return;
  }
  const len = Buffer.byteLength(s);
  varint32(len);
  buf.write(s, pos, len, "utf8");
  pos += len;
}

function utf8Write(s: string, offset: number): number {
  const start = offset;
  for (let i = 0; i < s.length; ++i) {
    let c1 = s.charCodeAt(i);
    let c2: number;
    if (c1 < 128) {
      buf[offset++] = c1;
    } else if (c1 < 2048) {
      buf[offset++] = (c1 >> 6) | 192;
      buf[offset++] = (c1 & 63) | 128;
    } else if ((c1 & 0xfc00) === 0xd800 && ((c2 = s.charCodeAt(i + 1)) & 0xfc00) === 0xdc00) {
      c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (c2 & 0x03ff);
      ++i;
      buf[offset++] = (c1 >> 18) | 240;
      buf[offset++] = ((c1 >> 12) & 63) | 128;
      buf[offset++] = ((c1 >> 6) & 63) | 128;
      buf[offset++] = (c1 & 63) | 128;
    } else {
      buf[offset++] = (c1 >> 12) | 224;
      buf[offset++] = ((c1 >> 6) & 63) | 128;
      buf[offset++] = (c1 & 63) | 128;
    }
  }
  return offset - start;
}

function int64Field(tag: number, v: number | undefined): void {
  if (v === undefined || v === null || v === 0) return;
  ensure(12);
  buf[pos++] = tag;
  varint64(v);
}

/** A nested message: written after a one-byte length, moved along if its length needs more. */
function beginNested(tag: number): number {
  ensure(2);
  buf[pos++] = tag;
  return pos++;
}

function endNested(lenPos: number): void {
  const len = pos - lenPos - 1;
  if (len < 128) {
    buf[lenPos] = len;
    return;
  }
  let extra = 0;
  for (let v = len >>> 7; v > 0; v >>>= 7) extra++;
  ensure(extra);
  buf.copyWithin(lenPos + 1 + extra, lenPos + 1, pos);
  const end = pos + extra;
  pos = lenPos;
  varint32(len);
  pos = end;
}

export function writeRecord(r: CanonicalRecord): Uint8Array {
  pos = 0;
  if (r.canonicalDeviceId) stringField(10, r.canonicalDeviceId);
  if (r.partition) stringField(18, r.partition);
  if (r.metadataHash) stringField(26, r.metadataHash);
  int64Field(32, r.updatedAtMs);
  const attrs = r.attributes;
  // Sorted in place by insertion: the built-in sort's work copy was the writer's largest allocation.
  for (const key of sortSmall(Object.keys(attrs))) {
    const at = beginNested(42);
    if (key !== "") stringField(10, key);
    const value = attrs[key];
    if (value) stringField(18, value);
    endNested(at);
  }
  const asserted = r.assertedBy ? KIND_WIRE_NUMBER[r.assertedBy] : 0;
  if (asserted) {
    ensure(11);
    buf[pos++] = 48;
    varint32(asserted);
  }
  if (r.source) stringField(58, r.source);
  if (r.authority) {
    ensure(2);
    buf[pos++] = 64;
    buf[pos++] = 1;
  }
  int64Field(72, r.expiresAtMs);
  if (r.operationId) stringField(82, r.operationId);
  for (const k of r.keys) {
    const at = beginNested(90);
    const kind = KIND_WIRE_NUMBER[k.kind];
    if (kind) {
      ensure(11);
      buf[pos++] = 8;
      varint32(kind);
    }
    if (k.value) stringField(18, k.value);
    for (const s of k.sources) stringField(26, s);
    endNested(at);
  }
  int64Field(96, r.provisionalSinceMs);
  const rebinds = r.sharedRebindsMs;
  if (rebinds?.length) {
    const at = beginNested(106);
    for (const v of rebinds) {
      ensure(10);
      varint64(v);
    }
    endNested(at);
  }
  int64Field(112, r.quarantinedSinceMs);
  for (const c of r.contenders ?? []) stringField(122, c);
  if (r.pin) {
    if (r.pin.atMs) {
      ensure(13);
      buf[pos++] = 128;
      buf[pos++] = 1;
      varint64(r.pin.atMs);
    }
    if (r.pin.actor) stringField2(138, r.pin.actor);
  }
  const out = Buffer.allocUnsafe(pos);
  buf.copy(out, 0, 0, pos);
  return out;
}

/** A string field whose tag takes two bytes (field numbers 16 and up). */
function stringField2(tag: number, s: string): void {
  ensure(2);
  buf[pos++] = (tag & 127) | 128;
  // stringField writes a one-byte tag: write the second byte through it.
  stringField(tag >>> 7, s);
}
