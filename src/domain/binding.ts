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
  | "released";

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
