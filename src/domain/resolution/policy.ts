import type { SharedIdentifierPolicy } from "../shared-identifier.js";

export interface ResolutionPolicy {
  /** Address keys and address-derived ids link a new strong identity only while this fresh. */
  readonly freshnessWindowMs: number;
  /** Weak keys (ip, partition-ip) expire this long after they were last written. */
  readonly weakKeyTtlMs: number;
  /** Sources whose addresses are static and authoritative (NetBox by default). */
  readonly addressAuthorities: ReadonlySet<string>;
  /** When a MAC counts as shared and is quarantined; DEFAULT_SHARED_IDENTIFIER_POLICY when absent. */
  readonly sharedIdentifiers?: SharedIdentifierPolicy;
}

export const DEFAULT_POLICY: ResolutionPolicy = {
  freshnessWindowMs: 15 * 60_000,
  weakKeyTtlMs: 24 * 3_600_000,
  addressAuthorities: new Set(["netbox"]),
};
