import type { IdentityKey } from "../identity-key.js";

/**
 * Why a decision came out as it did (docs/architecture.md, `explain`). Snake case: it goes to the wire as is,
 * like the tombstone.
 */
export interface DecisionTrace {
  /** Every device a key of the update named, in the order the keys were tried. */
  readonly candidates: readonly TraceCandidate[];
  /** What became of a provisional device at the update's address. */
  readonly provisional?: ProvisionalOutcome;
  /** What became of the update's own id, when it is not the canonical one. */
  readonly own_id?: "redirect" | "already_redirects" | "merged" | "kept_apart" | "pinned_apart";
  /** Quarantined (shared) identifiers of the update: they linked, merged and moved nothing. */
  readonly quarantined_ignored?: readonly IdentityKey[];
  /** An identifier this update found shared and quarantined. */
  readonly quarantined?: readonly IdentityKey[];
  /**
   * A MAC an evidently different device holds from a report as new or newer than this one: not moved,
   * but contested (a lookup by it answers ambiguous for the window, ADR 0022).
   */
  readonly contested?: readonly IdentityKey[];
  /** The rule that chose the canonical id. */
  readonly rule: DecisionRule;
}

export interface TraceCandidate {
  readonly device_id: string;
  /** The update's key whose binding named the device. */
  readonly key: IdentityKey;
  readonly verdict: "chosen" | "vetoed" | "stale_link" | "named_elsewhere";
  readonly provisional: boolean;
  /** A veto: the identifiers on which the update and the device differ. */
  readonly differing?: readonly { readonly kind: string; readonly update: string; readonly device: string }[];
}

export type ProvisionalOutcome =
  | { readonly action: "take_over" | "absorbed"; readonly device_id: string }
  | { readonly action: "absorption_refused"; readonly device_id: string; readonly reason: "two_places" | "veto" };

export type DecisionRule =
  /** A strong identifier (Armis, NetBox, MAC) bound to the device. */
  | "strongest_bound_key"
  /** The update's stable id names the device. */
  | "stable_id"
  /** An address bound to the device (fresh, an authority's, or the update only observes). */
  | "address"
  /** An address-derived id whose address the device still holds. */
  | "address_derived_id"
  /** A new identity at a provisional device's address: the provisional device is this one. */
  | "provisional_take_over"
  /** A device a concurrent writer created a moment ago with this update's strong identity. */
  | "joined_concurrent_create"
  /** Nothing bound: a new device under the update's natural id. */
  | "new_device"
  /** Nothing bound and the natural id is taken (ids are permanent): a new device under a derived id. */
  | "derived_id";
