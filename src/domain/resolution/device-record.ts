import type { Binding, BindingChange, KeyWrite } from "../binding.js";
import { keyId } from "../identity-key.js";
import { kindRank } from "../identity-kind.js";
import type { CanonicalRecord, IndexedKey } from "../record.js";
import { expiredOwner, recordOf, type IdentityPart } from "./key-writes.js";
import { deviceKey } from "./reader.js";
import type { UpdateContext } from "./update-context.js";
import { sortSmall } from "../small-sort.js";

export interface DeviceRecordInput {
  readonly base: IdentityPart;
  readonly deviceBinding: Binding | null;
  readonly deviceRecord: CanonicalRecord | undefined;
  readonly index: ReadonlyMap<string, IndexedKey>;
  /** Index entries to leave out when the record is written anyway (gone addresses no source asserts). */
  readonly droppable: ReadonlySet<string>;
  /** A device with no strong identifier ages out like its addresses. */
  readonly weakDevice: boolean;
  /**
   * This update binds a key to the device (a create, a rebind, a bound key that had expired) or
   * rewrites a key's identity: the record is written even when it would not change, so that this
   * write and a concurrent writer of the device meet on the record's revision (one of them decides
   * again). Without it, a writer whose record was older than the keys it read (another instance's
   * keys, written before that instance's record) rewrote them with the older identity, unseen.
   */
  readonly writesKeyIdentity: boolean;
}

export interface DeviceRecordWrite {
  readonly next: CanonicalRecord;
  readonly changed: boolean;
  /** The device record's own write (empty when unchanged). */
  readonly step: readonly KeyWrite[];
  /** The device's creation, for the audit trail. */
  readonly created?: BindingChange;
}

/** The device record: identity plus the reverse index. */
export function deviceRecordWrite(c: UpdateContext, input: DeviceRecordInput): DeviceRecordWrite {
  const { t, u, policy } = c;
  const { base, deviceBinding, deviceRecord, weakDevice } = input;
  const half = policy.weakKeyTtlMs / 2;
  const fullIndex = sortSmall([...input.index.values()], compareIndexed);
  const newIndex = fullIndex.filter((e) => !input.droppable.has(keyId(e)));
  const deviceUpdatedAt = deviceRecord ? Math.max(deviceRecord.updatedAtMs, t) : t;
  // A weak device is refreshed like an address: only once it is older than half the expiry.
  const updatedAtMs =
    weakDevice && deviceRecord && t - deviceRecord.updatedAtMs < half ? deviceRecord.updatedAtMs : deviceUpdatedAt;
  const next: CanonicalRecord = recordOf(
    base,
    updatedAtMs,
    deviceRecord?.assertedBy ?? c.assertion,
    deviceRecord?.source || u.source,
    false,
    weakDevice ? updatedAtMs + policy.weakKeyTtlMs : 0,
    newIndex,
  );
  const changed =
    !deviceRecord ||
    input.writesKeyIdentity ||
    deviceRecord.metadataHash !== base.metadataHash ||
    deviceRecord.expiresAtMs !== next.expiresAtMs ||
    !(sameIndex(deviceRecord.keys, newIndex) || sameIndex(deviceRecord.keys, fullIndex));
  if (!changed) return { next, changed, step: [] };
  const k = deviceKey(base.canonicalDeviceId);
  const step: KeyWrite[] = [
    deviceBinding
      ? { op: "update", key: k, record: next, revision: deviceBinding.revision }
      : { op: "create", key: k, record: next },
  ];
  if (deviceRecord) return { next, changed, step };
  const created: BindingChange = {
    key: k,
    fromDeviceId: expiredOwner(deviceBinding),
    toDeviceId: base.canonicalDeviceId,
    reason: "created",
  };
  return { next, changed, step, created };
}

/**
 * A new device claims its id first, so no key ever names an id another device might take. For a
 * known device the record goes last: its conditional write is the commit point, and a writer that
 * changed the device meanwhile makes it fail, so this decision is made again on the new record
 * (rewriting any key just bound with the old identity, and listing it in the index).
 */
export function stepOrder(
  newDevice: boolean,
  keyWrites: readonly KeyWrite[],
  deviceStep: readonly KeyWrite[],
  deletes: readonly KeyWrite[],
): (readonly KeyWrite[])[] {
  const steps = newDevice ? [deviceStep, keyWrites, deletes] : [keyWrites, deviceStep, deletes];
  return steps.filter((s) => s.length > 0);
}

function compareIndexed(a: IndexedKey, b: IndexedKey): number {
  return kindRank(a.kind) - kindRank(b.kind) || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0);
}

function sameIndex(a: readonly IndexedKey[], b: readonly IndexedKey[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.kind !== y.kind || x.value !== y.value || x.sources.length !== y.sources.length) return false;
    for (let j = 0; j < x.sources.length; j++) if (x.sources[j] !== y.sources[j]) return false;
  }
  return true;
}
