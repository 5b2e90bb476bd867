/** Why an identifier was not turned into a key. Counted by reason at the edge. */
export const REJECTION_REASONS = [
  "invalid_mac",
  "invalid_ip",
  "too_long",
  "zero_mac",
  "broadcast_mac",
  "multicast_mac",
  "vrrp_mac",
  "hsrp_mac",
  "denied",
  "metadata_too_large",
  "invalid_timestamp",
  "timestamp_in_future",
] as const;
export type RejectionReason = (typeof REJECTION_REASONS)[number];

/** One identifier of an update that could not become a key; the update's other identifiers still count. */
export interface RejectedIdentifier {
  readonly field: string;
  readonly value: string;
  readonly reason: RejectionReason;
}

/** Limits enforced before any KV call: backends disagree on value sizes (NATS 1 MiB, etcd 1.5 MiB). */
export const LIMITS = {
  identifierBytes: 256,
  metadataBytes: 16 * 1024,
  recordBytes: 64 * 1024,
} as const;

export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
