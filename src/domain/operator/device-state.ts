import { isLive, type Binding, type BindingChange, type KeyWrite } from "../binding.js";
import { InvalidArgument, NotFound } from "../errors.js";
import { keyId, type IdentityKey } from "../identity-key.js";
import { isAddressKind } from "../identity-kind.js";
import { identityHash, type CanonicalRecord, type Identity, type IndexedKey, type Pin } from "../record.js";
import { attributesOf } from "../record.js";

/** What an operator decision reads: the bindings it needs, by keyId; absent keys are `null`. */
export type LoadedBindings = ReadonlyMap<string, Binding | null>;

/**
 * An operator's decision as conditional writes, applied in order, and the changes to audit. Each
 * write names the revision it read: a sighting that changed a binding meanwhile makes the caller
 * read again and plan again (the plan is idempotent: keys already moved count as moved).
 */
export interface OperatorPlan {
  readonly writes: readonly KeyWrite[];
  readonly changes: readonly BindingChange[];
}

/** Who decided and when, and the operation id every written record carries (lost-reply settling). */
export interface OperatorContext {
  readonly actor: string;
  readonly nowMs: number;
  readonly operationId: string;
}

export const deviceIdKey = (id: string): IdentityKey => ({ kind: "device-id", value: id });

/** A device's own device-id binding, live and not a redirect; NotFound or InvalidArgument naming `field`. */
export function canonicalDevice(id: string, loaded: LoadedBindings, nowMs: number, field: string): Binding {
  const b = loaded.get(keyId(deviceIdKey(id)));
  if (!isLive(b, nowMs)) throw new NotFound(`${field}: no device ${id}`);
  if (b.record.canonicalDeviceId !== id)
    throw new InvalidArgument(field, `${id} was merged into ${b.record.canonicalDeviceId}: act on that device`);
  return b;
}

/** The keys a device's reverse index names, its own id first. */
export function indexedKeys(id: string, device: Binding): IndexedKey[] {
  return [
    { kind: "device-id", value: id, sources: [] },
    ...device.record.keys.filter((k) => k.value !== id || k.kind !== "device-id"),
  ];
}

/** The live binding of `k` when it is bound to `deviceId`. */
export function boundTo(k: IdentityKey, deviceId: string, loaded: LoadedBindings, nowMs: number): Binding | undefined {
  const b = loaded.get(keyId(k));
  return isLive(b, nowMs) && b.record.canonicalDeviceId === deviceId ? b : undefined;
}

/** The identity part every binding of a device carries, for `id` with `identity`. */
export function identityPart(
  id: string,
  partition: string,
  identity: Identity,
  operationId: string,
  provisionalSinceMs = 0,
): Pick<
  CanonicalRecord,
  "canonicalDeviceId" | "partition" | "metadataHash" | "attributes" | "operationId" | "provisionalSinceMs"
> {
  const attributes = attributesOf(identity);
  return {
    canonicalDeviceId: id,
    partition,
    metadataHash: identityHash(id, partition, attributes, provisionalSinceMs),
    attributes,
    operationId,
    ...(provisionalSinceMs > 0 ? { provisionalSinceMs } : {}),
  };
}

/** `record` carrying another identity part, its per-binding facts kept, and optionally a pin. */
export function restamp(
  record: CanonicalRecord,
  part: ReturnType<typeof identityPart>,
  pin: Pin | undefined,
  keys: readonly IndexedKey[] = [],
): CanonicalRecord {
  const { provisionalSinceMs: _, pin: oldPin, ...perBinding } = record;
  const kept = pin ?? oldPin;
  return { ...perBinding, ...part, keys, ...(kept ? { pin: kept } : {}) };
}

/** A fresh device-id binding (a new device, or an id an operator re-points), pinned. */
export function deviceIdRecord(
  part: ReturnType<typeof identityPart>,
  ctx: OperatorContext,
  keys: readonly IndexedKey[],
): CanonicalRecord {
  return {
    ...part,
    updatedAtMs: ctx.nowMs,
    assertedBy: "device-id",
    source: "operator",
    authority: false,
    expiresAtMs: 0,
    keys,
    pin: { atMs: ctx.nowMs, actor: ctx.actor },
  };
}

export function updateOf(k: IdentityKey, prior: Binding, record: CanonicalRecord): KeyWrite {
  return { op: "update", key: k, record, revision: prior.revision };
}

export function writeOf(k: IdentityKey, prior: Binding | null | undefined, record: CanonicalRecord): KeyWrite {
  return prior ? updateOf(k, prior, record) : { op: "create", key: k, record };
}

/** The index entry of a key: what it says, its sources (address keys) kept. */
export function entryOf(k: IdentityKey, from: readonly IndexedKey[]): IndexedKey {
  const e = from.find((x) => x.kind === k.kind && x.value === k.value);
  return { kind: k.kind, value: k.value, sources: isAddressKind(k.kind) ? [...(e?.sources ?? [])] : [] };
}

/** The keys of the devices' indexes not loaded yet (read them once the device-id bindings are). */
export function indexReads(ids: readonly string[], loaded: LoadedBindings): IdentityKey[] {
  const out: IdentityKey[] = [];
  for (const id of ids) {
    for (const e of loaded.get(keyId(deviceIdKey(id)))?.record.keys ?? [])
      if (!loaded.has(keyId(e)) && !out.some((k) => keyId(k) === keyId(e))) out.push({ kind: e.kind, value: e.value });
  }
  return out;
}
