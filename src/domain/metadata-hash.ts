import { createHash } from "node:crypto";
import { sortSmall } from "./small-sort.js";

/**
 * SHA-256 over entries sorted by key, each `key 0x00 value 0xFF`, lower-case hex; "" for no entries.
 * The reference's framing, so its test vectors hold.
 */
export function hashMetadata(entries: Readonly<Record<string, string>>): string {
  const keys = sortSmall(Object.keys(entries));
  if (keys.length === 0) return "";
  // The framed entries are assembled in one scratch buffer and hashed in one update: the same bytes
  // as an update per piece, without four calls into the hash per entry (issue 13).
  let need = 0;
  for (const k of keys) need += 3 * (k.length + entries[k]!.length) + 2;
  if (scratch.length < need) scratch = new Uint8Array(Math.max(need, scratch.length * 2));
  let pos = 0;
  for (const k of keys) {
    pos += UTF8.encodeInto(k, pos === 0 ? scratch : scratch.subarray(pos)).written;
    scratch[pos++] = 0;
    pos += UTF8.encodeInto(entries[k]!, scratch.subarray(pos)).written;
    scratch[pos++] = 0xff;
  }
  return createHash("sha256").update(scratch.subarray(0, pos)).digest("hex");
}

const UTF8 = new TextEncoder();
let scratch = new Uint8Array(1024);

/** A short, stable hex digest of a string; used for derived device ids. */
export function shortHash(s: string, hexChars: number): string {
  return createHash("sha256").update(s, "utf8").digest("hex").slice(0, hexChars);
}
