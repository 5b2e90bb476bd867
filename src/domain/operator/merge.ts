import type { BindingChange, KeyWrite } from "../binding.js";
import { InvalidArgument } from "../errors.js";
import { keyId } from "../identity-key.js";
import { conflictingKinds, hasStrongIdentity, identityOf, unionIdentity, type IndexedKey } from "../record.js";
import {
  boundTo,
  canonicalDevice,
  deviceIdKey,
  deviceIdRecord,
  identityPart,
  indexedKeys,
  restamp,
  updateOf,
  type LoadedBindings,
  type OperatorContext,
  type OperatorPlan,
} from "./device-state.js";

/**
 * An operator's merge (ADR 0016): every key bound to `from` moves to `into`, pinned, and `from`'s id
 * redirects there (a tombstone). Refused when the two are the same device, when either is not a live
 * canonical device, or when their Armis or NetBox ids differ (a record holds one of each: the operator
 * splits or corrects the inventory first). Differing MACs are fine: a device has several.
 */
export function planMerge(from: string, into: string, loaded: LoadedBindings, ctx: OperatorContext): OperatorPlan {
  if (from === into) throw new InvalidArgument("into", "a device cannot be merged into itself");
  const a = canonicalDevice(from, loaded, ctx.nowMs, "device_id");
  const b = canonicalDevice(into, loaded, ctx.nowMs, "into");
  const idA = identityOf(a.record);
  const idB = identityOf(b.record);
  const differ = conflictingKinds(idA, idB).filter((k) => k !== "mac");
  if (differ.length > 0)
    throw new InvalidArgument("into", `the devices have different ${differ.join(" and ")}: a device has one`);
  const identity = unionIdentity(idB, idA, false);
  // Still provisional only when neither side brought a strong identifier.
  const provisional = hasStrongIdentity(identity)
    ? 0
    : Math.min(a.record.provisionalSinceMs || Infinity, b.record.provisionalSinceMs || Infinity);
  const part = identityPart(
    into,
    b.record.partition || a.record.partition,
    identity,
    ctx.operationId,
    Number.isFinite(provisional) ? provisional : 0,
  );
  const pin = { atMs: ctx.nowMs, actor: ctx.actor };

  const moves: KeyWrite[] = [];
  const inStep: KeyWrite[] = [];
  const changes: BindingChange[] = [];
  const index = new Map<string, IndexedKey>();
  for (const e of indexedKeys(into, b)) {
    if (e.kind === "device-id" && e.value === into) continue;
    const kb = boundTo(e, into, loaded, ctx.nowMs);
    if (!kb) continue;
    index.set(keyId(e), e);
    if (kb.record.metadataHash !== part.metadataHash) inStep.push(updateOf(e, kb, restamp(kb.record, part, undefined)));
  }
  for (const e of indexedKeys(from, a)) {
    if (e.kind === "device-id" && e.value === from) continue;
    const kb = boundTo(e, from, loaded, ctx.nowMs);
    if (!kb) continue;
    index.set(keyId(e), e);
    moves.push(updateOf(e, kb, restamp(kb.record, part, pin)));
    changes.push({ key: e, fromDeviceId: from, toDeviceId: into, reason: "manual_merge" });
  }
  const fromKey = deviceIdKey(from);
  index.set(keyId(fromKey), { ...fromKey, sources: [] });
  const intoKey = deviceIdKey(into);
  const device = updateOf(intoKey, b, { ...restamp(b.record, part, undefined, [...index.values()]) });
  // The retired id last: until it redirects, a retry finds its keys through its index.
  const redirect = updateOf(fromKey, a, deviceIdRecord(part, ctx, []));
  changes.push({ key: fromKey, fromDeviceId: from, toDeviceId: into, reason: "manual_merge" });
  return { writes: [...moves, ...inStep, device, redirect], changes };
}
