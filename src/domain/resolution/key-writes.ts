import type { Binding, BindingChange, KeyWrite } from "../binding.js";
import { keyId, type IdentityKey } from "../identity-key.js";
import { atLeastAsStrong, isAddressKind } from "../identity-kind.js";
import type { CanonicalRecord, IndexedKey } from "../record.js";
import { contendersAfterRebind, contestedRecord, quarantinedRecord } from "../shared-identifier.js";
import type { KeptKeys } from "./kept-keys.js";
import type { OwnIdOutcome } from "./own-id.js";
import type { Reader } from "./reader.js";
import type { UpdateContext } from "./update-context.js";
import { sortSmall } from "../small-sort.js";

/** The part of a record that is the same under every key of a device. */
export type IdentityPart = Pick<
  CanonicalRecord,
  "canonicalDeviceId" | "partition" | "metadataHash" | "attributes" | "operationId" | "provisionalSinceMs"
>;

export interface KeyWritesInput {
  readonly base: IdentityPart;
  readonly deviceRecord: CanonicalRecord | undefined;
  readonly keys: KeptKeys;
  readonly own: OwnIdOutcome;
  /** A device this update retires: merged (shared strong identifier) or absorbed (provisional). */
  readonly retired: RetiredDevice | undefined;
  /** The retired device's keys (its device-id first). */
  readonly mergeKeys: readonly IndexedKey[];
  readonly belongs: (deviceId: string) => boolean;
  /** Why a key not bound before is now bound here: a new device, a known one, or a take-over. */
  readonly linkReason: "created" | "linked" | "taken_over";
}

export interface RetiredDevice {
  readonly id: string;
  readonly record: CanonicalRecord | undefined;
  readonly reason: "merged" | "absorbed";
}

export interface KeyWrites {
  readonly writes: readonly KeyWrite[];
  readonly deletes: readonly KeyWrite[];
  readonly changes: BindingChange[];
  /** The device's reverse index after these writes. */
  readonly index: ReadonlyMap<string, IndexedKey>;
  /**
   * Entries of `index` for addresses no source asserts that are gone from the map: dropped when the record
   * is written anyway, never a write of their own.
   */
  readonly droppable: ReadonlySet<string>;
  /**
   * A key of the device is written with an identity it did not carry (a bind, or a key out of step
   * with the identity this decision read): the record must be written too, so that a concurrent
   * writer of the device meets this one on the record's revision (`DeviceRecordInput.writesKeyIdentity`).
   */
  readonly writesKeyIdentity: boolean;
}

/**
 * A create over an expired binding (not compacted yet) names its last owner as `from`, so that
 * device's audit trail shows the key leaving it.
 */
export const expiredOwner = (prior: Binding | null | undefined): string | null =>
  prior?.record.canonicalDeviceId || null;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A binding's record: the device's identity part, then the binding's own fields. Built as a literal:
 * `{ ...base, ... }` with the optional fields spread in after it was a twentieth of a publish's CPU in
 * the profiles (issue 13). The protobuf encoding orders fields by number, so the bytes do not depend
 * on the order the properties are set in.
 */
export function recordOf(
  base: IdentityPart,
  updatedAtMs: number,
  assertedBy: CanonicalRecord["assertedBy"],
  source: string,
  authority: boolean,
  expiresAtMs: number,
  keys: readonly IndexedKey[],
): Mutable<CanonicalRecord> {
  const r: Mutable<CanonicalRecord> = {
    canonicalDeviceId: base.canonicalDeviceId,
    partition: base.partition,
    metadataHash: base.metadataHash,
    attributes: base.attributes,
    operationId: base.operationId,
    updatedAtMs,
    assertedBy,
    source,
    authority,
    expiresAtMs,
    keys,
  };
  if (base.provisionalSinceMs !== undefined) r.provisionalSinceMs = base.provisionalSinceMs;
  return r;
}

/** The conditional writes of the device's keys: its own, a redirect, a merge's, and per-source pruning. */
export function buildKeyWrites(c: UpdateContext, reader: Reader, input: KeyWritesInput): KeyWrites {
  const { u, t, policy } = c;
  const { base, deviceRecord, keys, own, retired, mergeKeys, belongs, linkReason } = input;
  const canonical = base.canonicalDeviceId;
  const hash = base.metadataHash;
  const half = policy.weakKeyTtlMs / 2;
  const changes: BindingChange[] = [];
  const writes: KeyWrite[] = [];
  const deletes: KeyWrite[] = [];

  const recordFor = (k: IdentityKey, prior: Binding | null, rebinding: boolean): CanonicalRecord => {
    const address = isAddressKind(k.kind);
    const same = prior && !rebinding;
    const updatedAtMs = same ? Math.max(prior.record.updatedAtMs, t) : t;
    const assertedBy =
      same && prior.record.assertedBy && atLeastAsStrong(prior.record.assertedBy, c.assertion)
        ? prior.record.assertedBy
        : c.assertion;
    // A MAC's rebind history stays with the binding (it is how a shared MAC is recognised).
    const history = rebinding ? keys.rebindHistories.get(keyId(k)) : same ? prior.record.sharedRebindsMs : undefined;
    const record = recordOf(
      base,
      updatedAtMs,
      assertedBy,
      u.source || (prior?.record.source ?? ""),
      address && (c.isAuthority || (!!same && prior.record.authority)),
      address ? updatedAtMs + policy.weakKeyTtlMs : 0,
      [],
    );
    if (history?.length) {
      record.sharedRebindsMs = history;
      // The holders it moved between: a lookup by it may be ambiguous (ambiguityOf).
      const contenders = rebinding
        ? contendersAfterRebind(prior!.record, canonical, history)
        : same
          ? prior.record.contenders
          : undefined;
      if (contenders?.length) record.contenders = contenders;
    }
    // An operator's pin stays with the binding while the key stays on the device (ADR 0016).
    if (same && prior.record.pin) record.pin = prior.record.pin;
    return record;
  };
  const put = (k: IdentityKey, prior: Binding | null | undefined, record: CanonicalRecord) => {
    writes.push(prior ? { op: "update", key: k, record, revision: prior.revision } : { op: "create", key: k, record });
  };

  // The update's keys.
  const index = new Map<string, IndexedKey>();
  let restamped = false;
  // The index is a hint, kept unless the key now belongs to another device: a key that is absent
  // may be one a concurrent writer is about to bind (it writes this record first). An address no
  // source asserts any more is dropped once it is gone (see `droppable`).
  for (const e of deviceRecord?.keys ?? []) {
    const b = c.live(reader.get(e));
    if (b && !belongs(b.record.canonicalDeviceId)) continue;
    index.set(keyId(e), e);
  }
  for (const k of keys.kept) {
    const prior = reader.get(k);
    const b = c.live(prior);
    const rebinding = !!b && b.record.canonicalDeviceId !== canonical;
    const sources = isAddressKind(k.kind) && c.asserting && u.source !== "" ? [u.source] : [];
    const entry = index.get(keyId(k));
    index.set(keyId(k), { kind: k.kind, value: k.value, sources: mergeSources(entry?.sources, sources) });
    if (!b) {
      put(k, prior, recordFor(k, null, false));
      changes.push({ key: k, fromDeviceId: expiredOwner(prior), toDeviceId: canonical, reason: linkReason });
      continue;
    }
    if (rebinding) {
      put(k, prior, recordFor(k, b, true));
      const fromRetired = b.record.canonicalDeviceId === retired?.id;
      changes.push({
        key: k,
        fromDeviceId: b.record.canonicalDeviceId,
        toDeviceId: canonical,
        reason: fromRetired ? retired.reason : "moved",
      });
      continue;
    }
    const r = b.record;
    const address = isAddressKind(k.kind);
    // A sweep keeps a sweep-born (provisional) device's address alive, but it cannot tell who answers
    // at an address: it never refreshes the address of a device its own sources assert. Else the next
    // occupant's sweeps kept a departed device's address bound and "seen", and the two-places guard
    // took that for the device (an asserted sighting elsewhere) and refused absorptions it should make.
    const refresh =
      address && t > r.updatedAtMs && t - r.updatedAtMs >= half && (c.asserting || (base.provisionalSinceMs ?? 0) > 0);
    const gainsAuthority = address && c.isAuthority && !r.authority && t >= r.updatedAtMs;
    if (r.metadataHash !== hash) restamped = true;
    if (r.metadataHash !== hash || refresh || gainsAuthority) put(k, prior, recordFor(k, b, false));
  }

  if (own.listedRedirect && !index.has(keyId(own.listedRedirect)))
    index.set(keyId(own.listedRedirect), { ...own.listedRedirect, sources: [] });

  // The update's own id: a redirect to the canonical device.
  if (own.redirect) {
    const prior = reader.get(own.redirect);
    put(own.redirect, prior, { ...recordFor(own.redirect, null, true), assertedBy: "device-id" });
    index.set(keyId(own.redirect), { ...own.redirect, sources: [] });
    changes.push({ key: own.redirect, fromDeviceId: expiredOwner(prior), toDeviceId: canonical, reason: "merged" });
  }

  // A merge or an absorption: every binding of the retired device follows it.
  const from = retired?.id;
  for (const e of mergeKeys) {
    if (keys.kept.some((k) => keyId(k) === keyId(e))) continue;
    const b = c.live(reader.get(e));
    if (!b || b.record.canonicalDeviceId !== from) continue;
    const address = isAddressKind(e.kind);
    put(
      e,
      b,
      recordOf(
        base,
        b.record.updatedAtMs,
        b.record.assertedBy,
        b.record.source,
        b.record.authority,
        address ? b.record.expiresAtMs : 0,
        [],
      ),
    );
    index.set(keyId(e), { kind: e.kind, value: e.value, sources: e.sources });
    changes.push({ key: e, fromDeviceId: from, toDeviceId: canonical, reason: retired!.reason });
  }

  // Shared MACs found by this update: quarantined where they stand, naming every contender.
  for (const q of keys.quarantines) {
    const record = quarantinedRecord(q.binding.record, canonical, q.history, t, c.operationId);
    writes.push({ op: "update", key: q.key, record, revision: q.binding.revision });
    changes.push({
      key: q.key,
      fromDeviceId: q.binding.record.canonicalDeviceId,
      toDeviceId: null,
      reason: "quarantined",
    });
  }

  // MACs an earlier holder reported late: still their holder's, now naming both (ambiguityOf).
  for (const q of keys.contests) {
    const record = contestedRecord(q.binding.record, canonical, q.history);
    writes.push({ op: "update", key: q.key, record, revision: q.binding.revision });
  }

  // Per-source address pruning: the address this source reported before no longer lands here.
  if (c.asserting && u.ip !== "" && u.source !== "" && !keys.staleAddressReport) {
    for (const [id, e] of index) {
      if (!isAddressKind(e.kind) || c.currentAddresses.has(id) || !e.sources.includes(u.source)) continue;
      const rest = e.sources.filter((s) => s !== u.source);
      if (rest.length > 0) {
        index.set(id, { ...e, sources: rest });
        continue;
      }
      const b = reader.get(e);
      if (b && b.record.canonicalDeviceId !== canonical) {
        index.delete(id);
        continue;
      }
      // Listed by a source and not bound: a writer may be binding it right now (a new device writes
      // its record before its keys). It stays listed, asserted by no source, and a later update drops
      // it once it is still gone (`droppable`): dropping it now could leave that write unlisted.
      if (!b) {
        index.set(id, { ...e, sources: [] });
        continue;
      }
      // A newer observation holds the address here: this report does not let it go.
      if (t < b.record.updatedAtMs) continue;
      // A pinned address stays where the operator put it (ADR 0016), listed, asserted by no source.
      if (b.record.pin) {
        index.set(id, { ...e, sources: [] });
        continue;
      }
      // Still listed, asserted by no source, until it is gone: the record commits before this delete,
      // and a delete that never lands (the KV went away) must not leave the key bound and unlisted.
      index.set(id, { ...e, sources: [] });
      deletes.push({ op: "delete", key: e, revision: b.revision });
      changes.push({ key: e, fromDeviceId: canonical, toDeviceId: null, reason: "moved" });
    }
  }

  // Keys of the device the update did not mention still carry its identity: keep them in step.
  const written = new Set(writes.map((w) => keyId(w.key)));
  for (const e of index.values()) {
    if (written.has(keyId(e)) || deletes.some((d) => keyId(d.key) === keyId(e))) continue;
    const b = c.live(reader.get(e));
    if (b && b.record.canonicalDeviceId === canonical && b.record.metadataHash !== hash) {
      restamped = true;
      // The identity part comes from base only: a flag the device no longer has must not survive.
      const { provisionalSinceMs: _, ...perBinding } = b.record;
      put(e, b, { ...perBinding, ...base, keys: [] });
    }
  }
  // An address listed without a source before this update and not bound now: gone, unless a writer
  // binds it concurrently, which the record's CAS catches when it lists the key (`writesKeyIdentity`) and the
  // caller's fresh read of `Resolved.dropped` catches when its view lags.
  const sourceless = new Set<string>();
  for (const e of deviceRecord?.keys ?? []) if (e.sources.length === 0) sourceless.add(keyId(e));
  const droppable = new Set<string>();
  for (const [id, e] of index)
    if (
      isAddressKind(e.kind) &&
      e.sources.length === 0 &&
      sourceless.has(id) &&
      !written.has(id) &&
      !c.live(reader.get(e))
    )
      droppable.add(id);
  const writesKeyIdentity = restamped || changes.some((ch) => ch.toDeviceId === canonical);
  return { writes, deletes, changes, index, droppable, writesKeyIdentity };
}

function mergeSources(a: readonly string[] | undefined, b: readonly string[]): string[] {
  const out = [...(a ?? [])];
  for (const s of b) if (!out.includes(s)) out.push(s);
  return sortSmall(out);
}
