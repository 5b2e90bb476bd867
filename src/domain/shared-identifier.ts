import type { Binding, BindingChange, KeyWrite } from "./binding.js";
import type { IdentityKey } from "./identity-key.js";
import { conflictingKinds, identityOf, type CanonicalRecord, type Identity } from "./record.js";
import { isAddressDerived } from "./resolution/address-names.js";

/**
 * Shared identifiers (ADR 0010): a MAC that evidently different devices keep taking from each
 * other (a dock, a USB dongle, MAC pass-through, cloned VMs) is quarantined. Its state lives in the
 * MAC's own binding, so every backend and every instance sees it and it changes only by CAS.
 */
export interface SharedIdentifierPolicy {
  /** Rebinds between evidently different devices within the window that quarantine the MAC. */
  readonly rebinds: number;
  readonly windowMs: number;
}

export const DEFAULT_SHARED_IDENTIFIER_POLICY: SharedIdentifierPolicy = {
  rebinds: 2,
  windowMs: 7 * 24 * 3_600_000,
};

export function isQuarantined(r: CanonicalRecord): boolean {
  return (r.quarantinedSinceMs ?? 0) > 0;
}

/** The devices a quarantined identifier could name, for the ambiguity answer. */
export function candidatesOf(r: CanonicalRecord): readonly string[] {
  return r.contenders ?? [r.canonicalDeviceId];
}

/**
 * Two devices are evidently different when they disagree on a strong identifier other than the MAC,
 * on a stable id, or on a hostname. Two records of one real device (a duplicate) are not evidence.
 */
export function evidentlyDifferent(holder: CanonicalRecord, taker: string, takerIdentity: Identity): boolean {
  const held = identityOf(holder);
  if (conflictingKinds(held, takerIdentity).some((k) => k !== "mac")) return true;
  if (held.hostname !== "" && takerIdentity.hostname !== "" && held.hostname !== takerIdentity.hostname) return true;
  return isStableName(holder.canonicalDeviceId) && isStableName(taker);
}

/** The rebind history after one more rebind at `t`, pruned to the window. */
export function rebindHistory(prior: CanonicalRecord, t: number, policy: SharedIdentifierPolicy): number[] {
  return [...(prior.sharedRebindsMs ?? []), t].filter((at) => t - at < policy.windowMs).sort((a, b) => a - b);
}

/** The MAC's binding once quarantined: still naming its last holder, listing every contender. */
export function quarantinedRecord(
  prior: CanonicalRecord,
  taker: string,
  history: readonly number[],
  t: number,
  operationId: string,
): CanonicalRecord {
  const contenders = [...new Set([...(prior.contenders ?? []), prior.canonicalDeviceId, taker])].sort();
  return { ...prior, keys: [], sharedRebindsMs: history, quarantinedSinceMs: t, contenders, operationId };
}

/**
 * An operator's release: the binding is removed (at its revision), so the next report binds the MAC
 * afresh to whoever reports it, with no history. Audited as `released`.
 */
export function releaseQuarantine(
  key: IdentityKey,
  binding: Binding,
): { write: KeyWrite; change: BindingChange } | undefined {
  if (!isQuarantined(binding.record)) return undefined;
  return {
    write: { op: "delete", key, revision: binding.revision },
    change: { key, fromDeviceId: binding.record.canonicalDeviceId, toDeviceId: null, reason: "released" },
  };
}

/** A name a source chose for its device, not derived from an address (derived ids keep their base). */
function isStableName(id: string): boolean {
  const base = id.split("~")[0] ?? id;
  return base !== "" && !isAddressDerived(base);
}
