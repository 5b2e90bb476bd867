import type { BindingChange, KeyWrite } from "../binding.js";
import type { IdentityKey } from "../identity-key.js";
import type { IdentityKind } from "../identity-kind.js";
import type { CanonicalRecord } from "../record.js";
import type { DecisionTrace } from "./trace.js";

/** `pinned`: a sighting asserted a key an operator pinned to another device (ADR 0016). */
export type ConflictReason = "weaker_assertion" | "out_of_order" | "pinned";

export interface Tombstone {
  readonly device_id: string;
  readonly merged_into: string;
}

export interface Resolved {
  readonly status: "decided";
  readonly outcome: "created" | "updated" | "unchanged";
  readonly canonicalDeviceId: string;
  readonly partition: string;
  readonly matchedBy: IdentityKind | null;
  readonly tombstone?: Tombstone;
  /** Devices retired by this update (a merge), besides the update's own id. */
  readonly mergedDeviceIds: readonly string[];
  /** The canonical record as written (or as it stands, when unchanged). */
  readonly record: CanonicalRecord;
  /** Writes in the order they must be applied: each step after the previous one succeeded. */
  readonly steps: readonly (readonly KeyWrite[])[];
  readonly changes: readonly BindingChange[];
  /** Rebinds refused by the precedence rules: counted, not errors. */
  readonly conflicts: readonly RefusedRebind[];
  /** Candidate devices refused because a stronger identity differs. */
  readonly vetoes: number;
  /** Stale address links refused (the address was not fresh enough to link a new strong identity). */
  readonly staleLinks: number;
  /** Why: the candidates, vetoes, provisional outcome and the rule that chose. */
  readonly trace: DecisionTrace;
  /**
   * Address keys the written record leaves out of its index because the reader said they were gone.
   * The record's conditional write does not cover them: a caller whose reader may lag (a cache) reads
   * them from the store before it commits, and decides again if one is bound after all.
   */
  readonly dropped?: readonly IdentityKey[];
}

export interface RefusedRebind {
  readonly key: IdentityKey;
  readonly reason: ConflictReason;
  /** A pinned key: the device the pin holds it on (the other side of the conflict). */
  readonly heldBy?: string;
}

export type Decision =
  | { readonly status: "rejected" }
  | { readonly status: "needs"; readonly keys: readonly IdentityKey[] }
  | Resolved;
