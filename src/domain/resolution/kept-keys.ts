import { keyId, type IdentityKey } from "../identity-key.js";
import { atLeastAsStrong, isAddressKind, isStrongKind } from "../identity-kind.js";
import type { Binding } from "../binding.js";
import type { CanonicalRecord, Identity } from "../record.js";
import { DEFAULT_SHARED_IDENTIFIER_POLICY, evidentlyDifferent, rebindHistory } from "../shared-identifier.js";
import type { RefusedRebind } from "./decision.js";
import type { Reader } from "./reader.js";
import type { UpdateContext } from "./update-context.js";

/** A MAC binding this update changes the shared-identifier state of, with its rebind history after it. */
export interface SharedMacChange {
  readonly key: IdentityKey;
  readonly binding: Binding;
  readonly history: readonly number[];
}

export interface KeptKeys {
  /** The update's keys (device-id aside) that end up bound to the device. */
  readonly kept: readonly IdentityKey[];
  readonly conflicts: readonly RefusedRebind[];
  /** MAC rebinds between evidently different devices: the history each rebound binding carries. */
  readonly rebindHistories: ReadonlyMap<string, readonly number[]>;
  /**
   * MACs an earlier holder reports late (refused as out of order) while an evidently different device
   * holds them: they stay where they are, remembering the hand-over (ADR 0022).
   */
  readonly contests: readonly SharedMacChange[];
  /** MACs this update found shared: their bindings become quarantined instead of moving. */
  readonly quarantines: readonly SharedMacChange[];
  /** The source reported another address since this observation: its address is not brought back. */
  readonly staleAddressReport: boolean;
}

/** Which of the update's keys end up bound to the device, and the rebinds the precedence rules refuse. */
export function keptKeys(
  c: UpdateContext,
  reader: Reader,
  deviceRecord: CanonicalRecord | undefined,
  belongs: (deviceId: string) => boolean,
  taker: { readonly id: string; readonly identity: Identity },
): KeptKeys {
  const { u, t } = c;
  const half = c.policy.weakKeyTtlMs / 2;
  const oldIndex = deviceRecord?.keys ?? [];
  // A source's address report older than what the device record already knows from that source
  // (it reported another address since) is out of order: it must not bring the old address back.
  const { currentAddresses } = c;
  const staleAddressReport =
    !!deviceRecord &&
    t < deviceRecord.updatedAtMs &&
    u.source !== "" &&
    oldIndex.some((e) => isAddressKind(e.kind) && e.sources.includes(u.source) && !currentAddresses.has(keyId(e)));

  const conflicts: RefusedRebind[] = [];
  const kept: IdentityKey[] = [];
  const rebindHistories = new Map<string, readonly number[]>();
  const quarantines: SharedMacChange[] = [];
  const contests: SharedMacChange[] = [];
  const shared = c.policy.sharedIdentifiers ?? DEFAULT_SHARED_IDENTIFIER_POLICY;
  for (const k of c.ranked) {
    if (k.kind === "device-id") continue;
    if (staleAddressReport && isAddressKind(k.kind)) {
      conflicts.push({ key: k, reason: "out_of_order" });
      continue;
    }
    const b = c.live(reader.get(k));
    if (!b || belongs(b.record.canonicalDeviceId)) {
      kept.push(k);
      continue;
    }
    // A weak sighting only observes: it never moves an address between devices.
    if (!isStrongKind(k.kind) && !c.strong) continue;
    // A pinned key is an operator's decision (ADR 0016): no sighting moves it. One asserting no more
    // than the evidence the binding holds is refused as weaker; a stronger one is a conflict the
    // operator settles (counted, and audited on both devices as `pin_conflict`).
    if (b.record.pin) {
      const held = b.record.assertedBy ?? k.kind;
      const stronger = c.assertion !== held && atLeastAsStrong(c.assertion, held);
      conflicts.push(
        stronger
          ? { key: k, reason: "pinned", heldBy: b.record.canonicalDeviceId }
          : { key: k, reason: "weaker_assertion" },
      );
      continue;
    }
    if (isStrongKind(k.kind) && !atLeastAsStrong(c.assertion, b.record.assertedBy ?? k.kind)) {
      conflicts.push({ key: k, reason: "weaker_assertion" });
      continue;
    }
    // The bare ip is shared by every partition: a device of another partition keeps it while it
    // refreshes it, so two partitions using one address do not take it from each other on every report.
    if (k.kind === "ip" && b.record.partition !== u.partition && t - b.record.updatedAtMs < half) continue;
    // Moving a key to another device needs a strictly newer observation: equal times would let two
    // claims flip the key back and forth on every replay. IPs follow their latest strong owner. A
    // binding only a weak sighting made (a sweep's device) does not shield an older strong report.
    const weaklyHeld = c.strong && !isStrongKind(b.record.assertedBy ?? k.kind);
    if (t <= b.record.updatedAtMs && !weaklyHeld) {
      conflicts.push({ key: k, reason: "out_of_order" });
      // An evidently different device reports, late, that it held the MAC before its holder did: the
      // MAC changed hands at its holder's observation, whichever order the reports came in. It stays
      // with its holder (the newer observation) and remembers the hand-over, as one seen in order
      // would (ADR 0022): once per contender, so a source re-listing the old report changes nothing.
      if (
        k.kind === "mac" &&
        !(b.record.contenders ?? []).includes(taker.id) &&
        evidentlyDifferent(b.record, taker.id, taker.identity)
      ) {
        const history = rebindHistory(b.record, b.record.updatedAtMs, shared);
        (history.length >= shared.rebinds ? quarantines : contests).push({ key: k, binding: b, history });
      }
      continue;
    }
    // A MAC that evidently different devices keep taking from each other is shared: quarantined
    // where it stands rather than moved once more.
    if (k.kind === "mac" && evidentlyDifferent(b.record, taker.id, taker.identity)) {
      const history = rebindHistory(b.record, t, shared);
      if (history.length >= shared.rebinds) {
        quarantines.push({ key: k, binding: b, history });
        continue;
      }
      rebindHistories.set(keyId(k), history);
    }
    kept.push(k);
  }
  return { kept, conflicts, staleAddressReport, rebindHistories, contests, quarantines };
}
