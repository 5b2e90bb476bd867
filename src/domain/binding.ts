import type { IdentityKey } from "./identity-key.js";
import type { CanonicalRecord } from "./record.js";

/** A backend's version of a binding. Every supported store exposes a monotonic integer per store. */
export type Revision = number;

export interface Binding {
  readonly record: CanonicalRecord;
  readonly revision: Revision;
}

/**
 * What the resolution can see: the binding of a key, `null` when the key is absent, `undefined`
 * when it has not been loaded yet (the caller loads it and asks again).
 */
export type BindingView = (key: IdentityKey) => Binding | null | undefined;

/** One conditional write. Every write names the revision it expects (create expects absence). */
export type KeyWrite =
  | { readonly op: "create"; readonly key: IdentityKey; readonly record: CanonicalRecord }
  | { readonly op: "update"; readonly key: IdentityKey; readonly record: CanonicalRecord; readonly revision: Revision }
  | { readonly op: "delete"; readonly key: IdentityKey; readonly revision: Revision };

/**
 * The rule behind a binding change (design.md §5): what the audit trail, the log line and the
 * `identitymap_binding_changes_total{reason}` label say.
 */
export type ChangeReason =
  /** A key of a device this update created (its device-id and the keys it came with). */
  | "created"
  /** A key newly bound to a device that already existed. */
  | "linked"
  /** A key bound to a provisional device that an asserting update took over (it keeps its id). */
  | "taken_over"
  /** A key that left a device: rebound to another one, or the address a source reported before. */
  | "moved"
  /** A key that followed a device merged into another (a shared strong identifier), or its redirect. */
  | "merged"
  /** An address binding past its expiry, removed by compaction. */
  | "expired"
  /** A relational answer written back to the map by a lookup. */
  | "hydrated"
  /** A provisional device's binding that followed the known device which absorbed it. */
  | "absorbed"
  /** A MAC that evidently different devices kept taking from each other: it no longer links anything. */
  | "quarantined"
  /** An operator released a quarantined identifier. */
  | "released";

const REASONS: Record<ChangeReason, true> = {
  created: true,
  linked: true,
  taken_over: true,
  moved: true,
  merged: true,
  expired: true,
  hydrated: true,
  absorbed: true,
  quarantined: true,
  released: true,
};
/** Every reason, for the API schema (a reason added to the type and not here fails the typecheck). */
export const CHANGE_REASONS = Object.keys(REASONS) as readonly ChangeReason[];

/** A binding change, for the audit trail. */
export interface BindingChange {
  readonly key: IdentityKey;
  readonly fromDeviceId: string | null;
  readonly toDeviceId: string | null;
  readonly reason: ChangeReason;
}

export function isLive(b: Binding | null | undefined, atMs: number): b is Binding {
  return !!b && (b.record.expiresAtMs === 0 || b.record.expiresAtMs > atMs);
}
