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
  /**
   * Rebinds within the window after which a lookup by the MAC answers that it is ambiguous (naming
   * its holders) though it is not quarantined yet: it still links and merges as before (ADR 0022).
   * At `rebinds` or more, only a quarantine makes a lookup ambiguous. Default 1.
   */
  readonly ambiguousAfter?: number;
}

export const DEFAULT_SHARED_IDENTIFIER_POLICY: SharedIdentifierPolicy = {
  rebinds: 2,
  windowMs: 7 * 24 * 3_600_000,
  ambiguousAfter: 1,
};

/** The shared-identifier policy the settings describe (ADR 0010 and 0022). */
export function sharedIdentifierPolicy(s: {
  readonly sharedMacRebinds: number;
  readonly sharedMacWindowMs: number;
  readonly sharedMacAmbiguousAfter: number;
}): SharedIdentifierPolicy {
  return { rebinds: s.sharedMacRebinds, windowMs: s.sharedMacWindowMs, ambiguousAfter: s.sharedMacAmbiguousAfter };
}

/** Contenders remembered on a MAC that changes hands (besides the quarantine's): the newest few. */
const MAX_CONTENDERS = 16;

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

/**
 * The devices a lookup by this binding could mean when it cannot name one confidently: every
 * contender of a quarantined MAC, or the holders of a MAC that changed hands between evidently
 * different devices at least `ambiguousAfter` times within the window before `nowMs`. Undefined
 * when the binding names its holder confidently.
 */
export function ambiguityOf(
  r: CanonicalRecord,
  nowMs: number,
  policy: SharedIdentifierPolicy = DEFAULT_SHARED_IDENTIFIER_POLICY,
): readonly string[] | undefined {
  if (isQuarantined(r)) return candidatesOf(r);
  return (contestedUntil(r, policy) ?? 0) > nowMs ? r.contenders : undefined;
}

/**
 * Until when a contested (not quarantined) binding is ambiguous: the `ambiguousAfter`-th newest
 * rebind's time plus the window. Undefined when it never was (or is quarantined: that is for good).
 */
export function contestedUntil(r: CanonicalRecord, policy: SharedIdentifierPolicy): number | undefined {
  if (isQuarantined(r) || !r.sharedRebindsMs?.length || !r.contenders) return undefined;
  const after = policy.ambiguousAfter ?? DEFAULT_SHARED_IDENTIFIER_POLICY.ambiguousAfter!;
  if (after >= policy.rebinds || r.sharedRebindsMs.length < after) return undefined;
  const newestFirst = [...r.sharedRebindsMs].sort((a, b) => b - a);
  return newestFirst[after - 1]! + policy.windowMs;
}

/** The holders a MAC remembers after it moves from `prior`'s holder to `taker` (newest last, capped). */
export function contendersAfterRebind(prior: CanonicalRecord, taker: string, history: readonly number[]): string[] {
  // A history of one rebind starts afresh: earlier holders left the window with their rebinds.
  const before = history.length > 1 ? (prior.contenders ?? []) : [];
  const all = [...before, prior.canonicalDeviceId, taker];
  const out: string[] = [];
  for (let i = all.length - 1; i >= 0 && out.length < MAX_CONTENDERS; i--)
    if (!out.includes(all[i]!)) out.push(all[i]!);
  return out.sort();
}

/** The rebind history after one more rebind at `t`, pruned to the window. */
export function rebindHistory(prior: CanonicalRecord, t: number, policy: SharedIdentifierPolicy): number[] {
  return [...(prior.sharedRebindsMs ?? []), t].filter((at) => t - at < policy.windowMs).sort((a, b) => a - b);
}

/**
 * The MAC's binding once an evidently different device's late report contested it (ADR 0022): still
 * its holder's, remembering the hand-over and both holders, as a rebind seen in order would.
 */
export function contestedRecord(prior: CanonicalRecord, taker: string, history: readonly number[]): CanonicalRecord {
  return { ...prior, sharedRebindsMs: history, contenders: contendersAfterRebind(prior, taker, history) };
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
