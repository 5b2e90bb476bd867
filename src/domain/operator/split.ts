import { createHash } from "node:crypto";
import type { BindingChange, KeyWrite } from "../binding.js";
import { InvalidArgument } from "../errors.js";
import { keyId, type IdentityKey } from "../identity-key.js";
import { isLive } from "../binding.js";
import { EMPTY_IDENTITY, identityOf, type Identity, type IndexedKey } from "../record.js";
import {
  boundTo,
  canonicalDevice,
  deviceIdKey,
  deviceIdRecord,
  entryOf,
  identityPart,
  indexedKeys,
  restamp,
  updateOf,
  writeOf,
  type LoadedBindings,
  type OperatorContext,
  type OperatorPlan,
} from "./device-state.js";

/**
 * The id of the device a split creates: an id among the split keys (one merged into this device
 * earlier: splitting it off undoes that merge), else the device's id plus a short hash of the keys,
 * so two operators who split the same keys name the same device.
 */
export function splitDeviceId(deviceId: string, keys: readonly IdentityKey[]): string {
  const own = keys.find((k) => k.kind === "device-id");
  if (own) return own.value;
  const text = keys.map(keyId).sort().join("\n");
  return `${deviceId}~split-${createHash("sha256").update(text).digest("hex").slice(0, 8)}`;
}

/**
 * An operator's split (ADR 0016): the named keys (bound to `deviceId`, not its own id) become a new
 * device, pinned there, and the strong identifiers they carry leave the old device's identity.
 * Refused naming `keys[i]` when a key is not bound to the device, or `keys` when the list is empty
 * or the new device's id is taken by another device.
 */
export function planSplit(
  deviceId: string,
  keys: readonly IdentityKey[],
  loaded: LoadedBindings,
  ctx: OperatorContext,
): OperatorPlan & { readonly newDeviceId: string } {
  if (keys.length === 0) throw new InvalidArgument("keys", "name at least one key to split off");
  const d = canonicalDevice(deviceId, loaded, ctx.nowMs, "device_id");
  const newId = splitDeviceId(deviceId, keys);
  const moving = new Map<string, IdentityKey>();
  keys.forEach((k, i) => {
    if (k.kind === "device-id" && k.value === deviceId)
      throw new InvalidArgument(`keys[${i}]`, "the device's own id stays with it");
    if (!boundTo(k, deviceId, loaded, ctx.nowMs) && !boundTo(k, newId, loaded, ctx.nowMs))
      throw new InvalidArgument(`keys[${i}]`, `${k.kind} ${k.value} is not bound to ${deviceId}`);
    moving.set(keyId(k), k);
  });
  const newKey = deviceIdKey(newId);
  const existing = loaded.get(keyId(newKey));
  const taken =
    isLive(existing, ctx.nowMs) &&
    existing.record.canonicalDeviceId !== deviceId &&
    existing.record.canonicalDeviceId !== newId;
  if (taken) throw new InvalidArgument("keys", `the new device's id ${newId} names another device`);

  const oldIdentity = identityOf(d.record);
  const splitIdentity = identityOfKeys([...moving.values()]);
  const remaining: Identity = {
    armisId: oldIdentity.armisId === splitIdentity.armisId ? "" : oldIdentity.armisId,
    netboxIds: oldIdentity.netboxIds.filter((x) => !splitIdentity.netboxIds.includes(x)),
    macs: oldIdentity.macs.filter((x) => !splitIdentity.macs.includes(x)),
    hostname: oldIdentity.hostname,
  };
  const partition = d.record.partition;
  const newPart = identityPart(newId, partition, splitIdentity, ctx.operationId);
  const oldPart = identityPart(deviceId, partition, remaining, ctx.operationId, d.record.provisionalSinceMs ?? 0);
  const pin = { atMs: ctx.nowMs, actor: ctx.actor };
  const oldIndex = indexedKeys(deviceId, d);

  const moves: KeyWrite[] = [];
  const inStep: KeyWrite[] = [];
  const changes: BindingChange[] = [];
  const newIndex: IndexedKey[] = [];
  for (const k of moving.values()) {
    if (k.kind === "device-id" && k.value === newId) continue;
    newIndex.push(entryOf(k, oldIndex));
    const b = boundTo(k, deviceId, loaded, ctx.nowMs);
    if (!b) continue; // moved by an earlier attempt
    moves.push(updateOf(k, b, restamp(b.record, newPart, pin)));
    changes.push({ key: k, fromDeviceId: deviceId, toDeviceId: newId, reason: "manual_split" });
  }
  const keptIndex: IndexedKey[] = [];
  for (const e of oldIndex) {
    if (e.kind === "device-id" && e.value === deviceId) continue;
    if (moving.has(keyId(e))) continue;
    const b = boundTo(e, deviceId, loaded, ctx.nowMs);
    if (!b) continue;
    keptIndex.push(e);
    if (b.record.metadataHash !== oldPart.metadataHash)
      inStep.push(updateOf(e, b, restamp(b.record, oldPart, undefined)));
  }
  // The new device's record first: once its keys point at it, its index must already list them.
  const created = writeOf(newKey, existing, deviceIdRecord(newPart, ctx, newIndex));
  if (!isLive(existing, ctx.nowMs) || existing.record.canonicalDeviceId !== newId)
    changes.unshift({
      key: newKey,
      fromDeviceId: isLive(existing, ctx.nowMs) ? existing.record.canonicalDeviceId : null,
      toDeviceId: newId,
      reason: "manual_split",
    });
  const device = updateOf(deviceIdKey(deviceId), d, restamp(d.record, oldPart, undefined, keptIndex));
  return { newDeviceId: newId, writes: [created, ...moves, ...inStep, device], changes };
}

/** The strong identity the split keys carry. */
function identityOfKeys(keys: readonly IdentityKey[]): Identity {
  const of = (kind: IdentityKey["kind"]) =>
    keys
      .filter((k) => k.kind === kind)
      .map((k) => k.value)
      .sort();
  return { ...EMPTY_IDENTITY, armisId: of("armis-id")[0] ?? "", netboxIds: of("netbox-id"), macs: of("mac") };
}
