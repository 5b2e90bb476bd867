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

export type ChangeReason =
  | "create"
  | "rebind"
  | "delete"
  | "merge"
  | "redirect"
  | "expire"
  | "hydrate"
  /** A provisional device's binding that followed the known device which absorbed it. */
  | "absorbed"
  /** A MAC that evidently different devices kept taking from each other: it no longer links anything. */
  | "quarantined"
  /** An operator released a quarantined identifier. */
  | "released"
  /** An operator merged one device into another (ADR 0016): the key moved, pinned. */
  | "manual_merge"
  /** An operator split keys off a device into a new one (ADR 0016): the key moved, pinned. */
  | "manual_split"
  /** An operator pinned the key where it stands: sightings no longer move it. */
  | "pinned"
  /** An operator lifted a pin: the resolution rules apply to the key again. */
  | "unpinned"
  /** A sighting asserted the pinned key for another device and was refused: for the operator to settle. */
  | "pin_conflict";

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
