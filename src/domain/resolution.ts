import type { BindingView } from "./binding.js";
import type { IdentityKey } from "./identity-key.js";
import type { NormalizedUpdate } from "./device-update.js";
import {
  attributesOf,
  EMPTY_IDENTITY,
  hasStrongIdentity,
  identityHash,
  identityOf,
  unionIdentity,
  type IndexedKey,
} from "./record.js";
import { ignoringQuarantined } from "./resolution/quarantined-keys.js";
import { chooseDevice } from "./resolution/choose-device.js";
import { claimId } from "./resolution/claim-id.js";
import type { Decision, Resolved } from "./resolution/decision.js";
import { nextIdentity } from "./resolution/device-identity.js";
import { deviceRecordWrite, stepOrder } from "./resolution/device-record.js";
import { keptKeys } from "./resolution/kept-keys.js";
import { buildKeyWrites, type IdentityPart, type RetiredDevice } from "./resolution/key-writes.js";
import { provisionalToAbsorb, type AbsorptionRefusal } from "./resolution/absorb.js";
import type { Candidate } from "./resolution/choose-device.js";
import type { DecisionRule, DecisionTrace, ProvisionalOutcome } from "./resolution/trace.js";
import { isStrongKind } from "./identity-kind.js";
import { ownIdOutcome } from "./resolution/own-id.js";
import { provisionalSince } from "./resolution/provisional.js";
import type { ResolutionPolicy } from "./resolution/policy.js";
import { MISSING, Reader } from "./resolution/reader.js";
import { updateContext, type UpdateContext } from "./resolution/update-context.js";

export { isAddressDerived } from "./resolution/address-names.js";
export type { ConflictReason, Decision, RefusedRebind, Resolved, Tombstone } from "./resolution/decision.js";
export type { DecisionRule, DecisionTrace } from "./resolution/trace.js";
export { DEFAULT_POLICY, type ResolutionPolicy } from "./resolution/policy.js";

export interface DecideInput {
  readonly update: NormalizedUpdate;
  readonly policy: ResolutionPolicy;
  /** Written into every record so a writer can recognise its own write after a lost reply. */
  readonly operationId: string;
}

/**
 * Decides which device an update belongs to and which conditional writes make the map say so
 * (ADR 0010). Pure: it reads only through `view`, and returns `needs` when a binding it must
 * see is not loaded; the caller loads those and calls again.
 */
export function decide(input: DecideInput, view: BindingView): Decision {
  if (input.update.keys.length === 0) return { status: "rejected" };
  const reader = new Reader(view);
  try {
    // Quarantined (shared) MACs link, merge and move nothing: the decision is made without them.
    const { update, ignored } = ignoringQuarantined(input.update, reader);
    if (update.keys.length === 0) return { status: "rejected" };
    return decideLoaded({ ...input, update }, reader, ignored);
  } catch (e) {
    if (e === MISSING) return { status: "needs", keys: [...reader.missing.values()] };
    throw e;
  }
}

/** The resolution rules in order (docs/architecture.md); each may end the decision early with `needs`. */
function decideLoaded(
  { update, policy, operationId }: DecideInput,
  reader: Reader,
  ignored: readonly IdentityKey[],
): Resolved {
  const c = updateContext(update, policy, operationId);
  const choice = chooseDevice(c, reader);
  const claim = claimId(c, reader, choice.chosen);
  const { canonical, deviceBinding, chosen } = claim;
  const deviceRecord = c.live(deviceBinding)?.record;
  const baseIdentity = deviceRecord
    ? identityOf(deviceRecord)
    : chosen
      ? identityOf(chosen.binding.record)
      : EMPTY_IDENTITY;
  const own = ownIdOutcome(c, reader, canonical, baseIdentity, choice.vetoed);

  // Everything the outcome touches: the device's index, then a retired device's keys.
  for (const e of deviceRecord?.keys ?? []) reader.get(e);
  reader.checkpoint();
  const absorption = own.mergeFrom
    ? {}
    : provisionalToAbsorb(c, reader, chosen, deviceRecord, baseIdentity, c.currentAddresses);
  const retired: RetiredDevice | undefined = own.mergeFrom
    ? { ...own.mergeFrom, reason: "merged" }
    : absorption.absorbed
      ? { ...absorption.absorbed, reason: "absorbed" }
      : undefined;
  const mergeKeys: IndexedKey[] = retired
    ? [{ kind: "device-id", value: retired.id, sources: [] }, ...(retired.record?.keys ?? [])]
    : [];
  for (const e of mergeKeys) reader.get(e);
  reader.checkpoint();

  const belongs = (dev: string) => dev === canonical || dev === retired?.id;
  const taker = { id: canonical, identity: unionIdentity(baseIdentity, c.identity, false) };
  const keys = keptKeys(c, reader, deviceRecord, belongs, taker);
  const identity = nextIdentity(c, baseIdentity, deviceRecord, retired?.record, keys.kept);
  const partition = deviceRecord?.partition || chosen?.binding.record.partition || update.partition;
  const attributes = attributesOf(identity);
  const provisionalSinceMs = provisionalSince(c, deviceRecord, chosen);
  const metadataHash = identityHash(canonical, partition, attributes, provisionalSinceMs);
  const base: Mutable<IdentityPart> = {
    canonicalDeviceId: canonical,
    partition,
    metadataHash,
    attributes,
    operationId,
  };
  if (provisionalSinceMs > 0) base.provisionalSinceMs = provisionalSinceMs;

  const rule = choice.chosen ? ruleOfChoice(c, choice.chosen) : (claim.rule ?? "new_device");
  const linkReason = rule === "provisional_take_over" ? "taken_over" : deviceRecord ? "linked" : "created";
  const kw = buildKeyWrites(c, reader, { base, deviceRecord, keys, own, retired, mergeKeys, belongs, linkReason });
  const device = deviceRecordWrite(c, {
    base,
    deviceBinding,
    deviceRecord,
    index: kw.index,
    droppable: kw.droppable,
    weakDevice: !hasStrongIdentity(identity),
    writesKeyIdentity: kw.writesKeyIdentity,
  });
  const changes = device.created ? [device.created, ...kw.changes] : kw.changes;
  const steps = stepOrder(!deviceRecord, kw.writes, device.step, kw.deletes);
  const tombstone =
    own.tombstone ?? (absorption.absorbed ? { device_id: absorption.absorbed.id, merged_into: canonical } : undefined);
  // Built field by field in the order the object literal with conditional spreads had (the JSON of a
  // decision is unchanged): a spread of a maybe-empty object is a runtime call each (issue 13).
  const trace = { candidates: choice.candidates } as Mutable<DecisionTrace>;
  const provisional = provisionalOutcome(rule, canonical, absorption);
  if (provisional) trace.provisional = provisional;
  if (own.trace) trace.own_id = own.trace;
  if (ignored.length) trace.quarantined_ignored = ignored;
  if (keys.quarantines.length) trace.quarantined = keys.quarantines.map((q) => q.key);
  if (keys.contests.length) trace.contested = keys.contests.map((q) => q.key);
  trace.rule = rule;
  const resolved: Mutable<Resolved> = {
    status: "decided",
    outcome: !chosen ? "created" : steps.length > 0 ? "updated" : "unchanged",
    canonicalDeviceId: canonical,
    partition,
    matchedBy: chosen?.kind ?? null,
  } as Mutable<Resolved>;
  if (tombstone) resolved.tombstone = tombstone;
  resolved.mergedDeviceIds = retired && retired.id !== update.deviceId ? [retired.id] : [];
  resolved.record = device.changed || !deviceRecord ? device.next : deviceRecord;
  resolved.steps = steps;
  resolved.changes = changes;
  resolved.conflicts = keys.conflicts;
  resolved.vetoes = choice.vetoes;
  resolved.staleLinks = choice.staleLinks;
  resolved.trace = trace;
  // What the written record leaves out as gone (`droppable`): the caller may need to re-read it.
  if (deviceRecord && device.changed && kw.droppable.size > 0)
    resolved.dropped = [...kw.droppable].map((id) => {
      const { kind, value } = kw.index.get(id)!;
      return { kind, value };
    });
  return resolved;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The rule behind a device a bound key named. */
function ruleOfChoice(c: UpdateContext, chosen: Candidate): DecisionRule {
  if (isStrongKind(chosen.kind)) return "strongest_bound_key";
  if (chosen.kind === "device-id" && c.stableId) return "stable_id";
  if (c.asserting && (chosen.binding.record.provisionalSinceMs ?? 0) > 0) return "provisional_take_over";
  return chosen.kind === "device-id" ? "address_derived_id" : "address";
}

function provisionalOutcome(
  rule: DecisionRule,
  canonical: string,
  absorption: { absorbed?: { id: string }; refused?: AbsorptionRefusal },
): ProvisionalOutcome | undefined {
  if (rule === "provisional_take_over") return { action: "take_over", device_id: canonical };
  if (absorption.absorbed) return { action: "absorbed", device_id: absorption.absorbed.id };
  if (absorption.refused)
    return {
      action: "absorption_refused",
      device_id: absorption.refused.deviceId,
      reason: absorption.refused.reason,
    };
  return undefined;
}
