import { createHash } from "node:crypto";

/**
 * SHA-256 over entries sorted by key, each `key 0x00 value 0xFF`, lower-case hex; "" for no entries.
 * The reference's framing, so its test vectors hold.
 */
export function hashMetadata(entries: Readonly<Record<string, string>>): string {
  const keys = Object.keys(entries).sort();
  if (keys.length === 0) return "";
  const h = createHash("sha256");
  for (const k of keys) {
    h.update(k, "utf8");
    h.update(SEP0);
    h.update(entries[k]!, "utf8");
    h.update(SEPFF);
  }
  return h.digest("hex");
}

const SEP0 = new Uint8Array([0]);
const SEPFF = new Uint8Array([0xff]);

/** A short, stable hex digest of a string; used for derived device ids. */
export function shortHash(s: string, hexChars: number): string {
  return createHash("sha256").update(s, "utf8").digest("hex").slice(0, hexChars);
}
