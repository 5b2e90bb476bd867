import { isLive, type Binding, type BindingChange, type BindingView, type KeyWrite } from "./binding.js";
import { partitionIp, type NormalizedUpdate } from "./device-update.js";
import { atLeastAsStrong, isAddressKind, isStrongKind, kindRank, type IdentityKind } from "./identity-kind.js";
import { keyId, prioritizeKeys, type IdentityKey } from "./identity-key.js";
import { isIp } from "./ip.js";
import { shortHash } from "./metadata-hash.js";
import {
  attributesOf,
  conflictingKinds,
  EMPTY_IDENTITY,
  hasStrongIdentity,
  identityHash,
  identityOf,
  sharesStrongIdentifier,
  unionIdentity,
  type CanonicalRecord,
  type Identity,
  type IndexedKey,
} from "./record.js";

export interface ResolutionPolicy {
  /** Address keys and address-derived ids link a new strong identity only while this fresh. */
  readonly freshnessWindowMs: number;
  /** Weak keys (ip, partition-ip) expire this long after they were last written. */
  readonly weakKeyTtlMs: number;
  /** Sources whose addresses are static and authoritative (NetBox by default). */
  readonly addressAuthorities: ReadonlySet<string>;
}

export const DEFAULT_POLICY: ResolutionPolicy = {
  freshnessWindowMs: 15 * 60_000,
  weakKeyTtlMs: 24 * 3_600_000,
  addressAuthorities: new Set(["netbox"]),
};

export type ConflictReason = "weaker_assertion" | "out_of_order";

export interface Tombstone {
  readonly device_id: string;
  readonly merged_into: string;
}

export interface Resolved {
  readonly status: "decided";
  readonly outcome: "created" | "updated" | "unchanged";
  readonly canonicalDeviceId: string;
  readonly partition: string;
  readonly matchedBy: IdentityKind | null;
  readonly tombstone?: Tombstone;
  /** Devices retired by this update (a merge), besides the update's own id. */
  readonly mergedDeviceIds: readonly string[];
  /** The canonical record as written (or as it stands, when unchanged). */
  readonly record: CanonicalRecord;
  /** Writes in the order they must be applied: each step after the previous one succeeded. */
  readonly steps: readonly (readonly KeyWrite[])[];
  readonly changes: readonly BindingChange[];
  /** Rebinds refused by the precedence rules: counted, not errors. */
  readonly conflicts: readonly { readonly key: IdentityKey; readonly reason: ConflictReason }[];
  /** Candidate devices refused because a stronger identity differs. */
  readonly vetoes: number;
  /** Stale address links refused (the address was not fresh enough to link a new strong identity). */
  readonly staleLinks: number;
}

export type Decision =
  | { readonly status: "rejected" }
  | { readonly status: "needs"; readonly keys: readonly IdentityKey[] }
  | Resolved;

export interface DecideInput {
  readonly update: NormalizedUpdate;
  readonly policy: ResolutionPolicy;
  /** Written into every record so a writer can recognise its own write after a lost reply. */
  readonly operationId: string;
}

/** Thrown to end a phase early; not an Error, so no stack trace is captured on this hot path. */
const MISSING = Symbol("missing bindings");

/** A view that remembers which keys it was asked for but did not have. */
class Reader {
  readonly missing = new Map<string, IdentityKey>();
  constructor(private readonly view: BindingView) {}
  get(key: IdentityKey): Binding | null | undefined {
    const b = this.view(key);
    if (b === undefined) this.missing.set(keyId(key), key);
    return b;
  }
  /** Ends the current phase: if anything was missing, decide() returns `needs`. */
  checkpoint(): void {
    if (this.missing.size > 0) throw MISSING;
  }
}

const deviceKey = (id: string): IdentityKey => ({ kind: "device-id", value: id });

/**
 * Decides which device an update belongs to and which conditional writes make the map say so
 * (design.md §3). Pure: it reads only through `view`, and returns `needs` when a binding it must
 * see is not loaded; the caller loads those and calls again.
 */
export function decide(input: DecideInput, view: BindingView): Decision {
  if (input.update.keys.length === 0) return { status: "rejected" };
  const reader = new Reader(view);
  try {
    return decideLoaded(input, reader);
  } catch (e) {
    if (e === MISSING) return { status: "needs", keys: [...reader.missing.values()] };
    throw e;
  }
}

function decideLoaded({ update: u, policy, operationId }: DecideInput, reader: Reader): Resolved {
  const t = u.timeMs;
  const live = (b: Binding | null | undefined): Binding | null => (isLive(b, t) ? b : null);
  const uIdentity: Identity = { armisId: u.armisId, netboxIds: u.netboxIds, macs: u.macs, hostname: u.hostname };
  const uStrong = hasStrongIdentity(uIdentity);
  const ranked = prioritizeKeys(u.keys);
  const assertion: IdentityKind = ranked[0]!.kind;
  const stableId = u.deviceId !== "" && !isAddressDerived(u.deviceId);
  // An update asserts where a device is when it names the device by more than the address itself.
  const asserting = uStrong || stableId;
  const isAuthority = policy.addressAuthorities.has(u.source);

  // Phase 1: the bindings of the update's own keys.
  for (const k of u.keys) reader.get(k);
  reader.checkpoint();

  // Choose the device: the strongest bound key whose device is not vetoed.
  let chosen: { deviceId: string; kind: IdentityKind; binding: Binding } | undefined;
  const vetoed = new Set<string>();
  let vetoes = 0;
  let staleLinks = 0;
  for (const k of candidateOrder(u, ranked, stableId)) {
    const b = live(reader.get(k));
    if (!b) continue;
    const dev = b.record.canonicalDeviceId;
    if (vetoed.has(dev)) continue;
    // An address-derived id names whoever held the address, so it links only while that address is
    // still bound to the same device, and then like the address itself: a device that moved away
    // must not be found again through its old name (design.md §3, per-source pruning).
    // An update that carries no address has only the name to go by, and the name is permanent: it
    // links to the device it names (else the same update would make a new device every time).
    let link = b;
    if (k.kind === "device-id" && !stableId && u.ip !== "") {
      const addr = addressKeyOfId(k.value);
      const ab = addr ? live(reader.get(addr)) : null;
      reader.checkpoint();
      if (!ab || ab.record.canonicalDeviceId !== dev) {
        staleLinks++;
        continue;
      }
      link = ab;
    }
    // An address links a new strong identity only while fresh (or asserted by an address
    // authority); a weak sighting (only an address) follows it for as long as the binding lives.
    // An address authority reporting its own static address links through it whatever its age.
    const fresh = t - link.record.updatedAtMs <= policy.freshnessWindowMs || link.record.authority || isAuthority;
    if (uStrong && (isAddressKind(k.kind) || link !== b) && !fresh) {
      staleLinks++;
      continue;
    }
    // Conflicts that veto: strong kinds stronger than the deciding key; for a stable id, which ranks
    // between NetBox ids and MACs, only Armis and NetBox ids.
    const rank =
      k.kind === "device-id" && stableId ? kindRank("mac") : isStrongKind(k.kind) ? kindRank(k.kind) : Infinity;
    const stronger = conflictingKinds(uIdentity, identityOf(b.record)).filter((c) => kindRank(c) < rank);
    // A stable id is the source's own name for its device, stronger than a MAC (NICs move between
    // machines): when it already names another live device, a MAC or an address cannot pull the
    // sighting onto a different one. Inventory ids (Armis, NetBox) still outrank it.
    const ownDevice = stableId ? live(reader.get(deviceKey(u.deviceId)))?.record.canonicalDeviceId : undefined;
    const namedElsewhere = ownDevice !== undefined && ownDevice !== dev && kindRank(k.kind) >= kindRank("mac");
    if (stronger.length > 0 || namedElsewhere) {
      vetoed.add(dev);
      vetoes++;
      continue;
    }
    chosen = { deviceId: dev, kind: k.kind, binding: b };
    break;
  }

  // Phase 2: the device's own record, or a free id for a new device.
  let canonical: string;
  let deviceBinding: Binding | null;
  if (chosen) {
    canonical = chosen.deviceId;
    deviceBinding = reader.get(deviceKey(canonical)) ?? null;
  } else {
    const natural = naturalId(u, ranked);
    const seed = `${ranked[0]!.kind}:${ranked[0]!.value}`;
    canonical = natural;
    deviceBinding = reader.get(deviceKey(natural)) ?? null;
    reader.checkpoint();
    // Ids are permanent: a taken id is never reused; the new device gets a deterministic derived id.
    // A taken id whose device carries this update's strong identity is this device, created a moment
    // ago by a concurrent writer whose keys are not bound yet: join it rather than fork a second one.
    for (const len of [8, 16, 32, 64, 0]) {
      const taken = live(deviceBinding);
      if (!taken) break;
      if (uStrong && sameDevice(identityOf(taken.record), uIdentity)) {
        chosen = { deviceId: taken.record.canonicalDeviceId, kind: "device-id", binding: taken };
        canonical = chosen.deviceId;
        deviceBinding = reader.get(deviceKey(canonical)) ?? null;
        break;
      }
      if (len === 0) throw new Error(`no free derived id for ${natural}`);
      canonical = `${natural}~${shortHash(seed, len)}`;
      deviceBinding = reader.get(deviceKey(canonical)) ?? null;
      reader.checkpoint();
    }
  }
  reader.checkpoint();
  const deviceRecord = live(deviceBinding)?.record;

  // The update's own id, when it is not the canonical one: a redirect, a merge, or nothing.
  let tombstone: Tombstone | undefined;
  let redirect: IdentityKey | undefined;
  /** An existing redirect of the update's id: it belongs in the index (and in step with the identity). */
  let listedRedirect: IdentityKey | undefined;
  let mergeFrom: { id: string; record: CanonicalRecord | undefined } | undefined;
  const baseIdentity = deviceRecord
    ? identityOf(deviceRecord)
    : chosen
      ? identityOf(chosen.binding.record)
      : EMPTY_IDENTITY;
  if (u.deviceId !== "" && u.deviceId !== canonical) {
    const own = live(reader.get(deviceKey(u.deviceId)));
    if (!own) {
      tombstone = { device_id: u.deviceId, merged_into: canonical };
      redirect = deviceKey(u.deviceId);
    } else if (own.record.canonicalDeviceId === canonical) {
      tombstone = { device_id: u.deviceId, merged_into: canonical };
      listedRedirect = deviceKey(u.deviceId);
    } else {
      const z = own.record.canonicalDeviceId;
      const zRecord = live(reader.get(deviceKey(z)))?.record ?? own.record;
      reader.checkpoint();
      const zIdentity = identityOf(zRecord);
      const compatible = conflictingKinds(zIdentity, unionIdentity(baseIdentity, uIdentity, false)).every(
        (c) => c === "mac",
      );
      if (!vetoed.has(z) && sharesStrongIdentifier(zIdentity, uIdentity) && compatible) {
        tombstone = { device_id: u.deviceId, merged_into: canonical };
        mergeFrom = { id: z, record: zRecord };
      }
    }
  }

  // Phase 3: everything the outcome touches: the device's index, the merged device's keys.
  const oldIndex = deviceRecord?.keys ?? [];
  for (const e of oldIndex) reader.get(e);
  const mergeKeys: IndexedKey[] = mergeFrom
    ? [{ kind: "device-id", value: mergeFrom.id, sources: [] }, ...(mergeFrom.record?.keys ?? [])]
    : [];
  for (const e of mergeKeys) reader.get(e);
  reader.checkpoint();

  const conflicts: { key: IdentityKey; reason: ConflictReason }[] = [];
  const half = policy.weakKeyTtlMs / 2;
  const belongs = (dev: string) => dev === canonical || dev === mergeFrom?.id;

  // A source's address report older than what the device record already knows from that source
  // (it reported another address since) is out of order: it must not bring the old address back.
  const currentAddresses = new Set([
    keyId({ kind: "ip", value: u.ip }),
    keyId({ kind: "partition-ip", value: partitionIp(u.partition, u.ip) }),
  ]);
  const staleAddressReport =
    !!deviceRecord &&
    t < deviceRecord.updatedAtMs &&
    u.source !== "" &&
    oldIndex.some((e) => isAddressKind(e.kind) && e.sources.includes(u.source) && !currentAddresses.has(keyId(e)));

  // Which of the update's keys end up bound to the device.
  const kept: IdentityKey[] = [];
  for (const k of ranked) {
    if (k.kind === "device-id") continue;
    if (staleAddressReport && isAddressKind(k.kind)) {
      conflicts.push({ key: k, reason: "out_of_order" });
      continue;
    }
    const b = live(reader.get(k));
    if (!b || belongs(b.record.canonicalDeviceId)) {
      kept.push(k);
      continue;
    }
    // A weak sighting only observes: it never moves an address between devices.
    if (!isStrongKind(k.kind) && !uStrong) continue;
    if (isStrongKind(k.kind) && !atLeastAsStrong(assertion, b.record.assertedBy ?? k.kind)) {
      conflicts.push({ key: k, reason: "weaker_assertion" });
      continue;
    }
    // The bare ip is shared by every partition: a device of another partition keeps it while it
    // refreshes it, so two partitions using one address do not take it from each other on every report.
    if (k.kind === "ip" && b.record.partition !== u.partition && t - b.record.updatedAtMs < half) continue;
    // Moving a key to another device needs a strictly newer observation: equal times would let two
    // claims flip the key back and forth on every replay. IPs follow their latest strong owner. A
    // binding only a weak sighting made (a sweep's device) does not shield an older strong report.
    const weaklyHeld = uStrong && !isStrongKind(b.record.assertedBy ?? k.kind);
    if (t <= b.record.updatedAtMs && !weaklyHeld) {
      conflicts.push({ key: k, reason: "out_of_order" });
      continue;
    }
    kept.push(k);
  }

  const keptIdentity: Identity = {
    armisId: kept.some((k) => k.kind === "armis-id") ? u.armisId : "",
    netboxIds: u.netboxIds.filter((v) => kept.some((k) => k.kind === "netbox-id" && k.value === v)),
    macs: u.macs.filter((v) => kept.some((k) => k.kind === "mac" && k.value === v)),
    hostname: u.hostname,
  };
  const hostnameNewer = !deviceRecord || t >= deviceRecord.updatedAtMs;
  const mergedBase = mergeFrom?.record
    ? unionIdentity(baseIdentity, identityOf(mergeFrom.record), false)
    : baseIdentity;
  const identity = unionIdentity(mergedBase, keptIdentity, hostnameNewer);
  const partition = deviceRecord?.partition || chosen?.binding.record.partition || u.partition;
  const attributes = attributesOf(identity);
  const hash = identityHash(canonical, partition, attributes);
  const weakDevice = !hasStrongIdentity(identity);

  const base = { canonicalDeviceId: canonical, partition, metadataHash: hash, attributes, operationId };
  const changes: BindingChange[] = [];
  const writes: KeyWrite[] = [];
  const deletes: KeyWrite[] = [];

  const recordFor = (k: IdentityKey, prior: Binding | null, rebinding: boolean): CanonicalRecord => {
    const address = isAddressKind(k.kind);
    const same = prior && !rebinding;
    const updatedAtMs = same ? Math.max(prior.record.updatedAtMs, t) : t;
    const assertedBy =
      same && prior.record.assertedBy && atLeastAsStrong(prior.record.assertedBy, assertion)
        ? prior.record.assertedBy
        : assertion;
    return {
      ...base,
      updatedAtMs,
      assertedBy,
      source: u.source || (prior?.record.source ?? ""),
      authority: address && (isAuthority || (!!same && prior.record.authority)),
      expiresAtMs: address ? updatedAtMs + policy.weakKeyTtlMs : 0,
      keys: [],
    };
  };
  // A create over an expired binding (not compacted yet) names its last owner as `from`, so that
  // device's audit trail shows the key leaving it.
  const expiredOwner = (prior: Binding | null | undefined): string | null => prior?.record.canonicalDeviceId || null;
  const put = (k: IdentityKey, prior: Binding | null | undefined, record: CanonicalRecord) => {
    writes.push(prior ? { op: "update", key: k, record, revision: prior.revision } : { op: "create", key: k, record });
  };

  // The update's keys.
  const index = new Map<string, IndexedKey>();
  // The index is a hint, kept unless the key now belongs to another device: a key that is absent
  // may be one a concurrent writer is about to bind (it writes this record first). An address no
  // source asserts any more is dropped once it is gone.
  for (const e of oldIndex) {
    const b = live(reader.get(e));
    if (b && !belongs(b.record.canonicalDeviceId)) continue;
    if (!b && isAddressKind(e.kind) && e.sources.length === 0) continue;
    index.set(keyId(e), e);
  }
  for (const k of kept) {
    const prior = reader.get(k);
    const b = live(prior);
    const rebinding = !!b && b.record.canonicalDeviceId !== canonical;
    const sources = isAddressKind(k.kind) && asserting && u.source !== "" ? [u.source] : [];
    const entry = index.get(keyId(k));
    index.set(keyId(k), { kind: k.kind, value: k.value, sources: mergeSources(entry?.sources, sources) });
    if (!b) {
      put(k, prior, recordFor(k, null, false));
      changes.push({ key: k, fromDeviceId: expiredOwner(prior), toDeviceId: canonical, reason: "create" });
      continue;
    }
    if (rebinding) {
      put(k, prior, recordFor(k, b, true));
      const fromMerge = b.record.canonicalDeviceId === mergeFrom?.id;
      changes.push({
        key: k,
        fromDeviceId: b.record.canonicalDeviceId,
        toDeviceId: canonical,
        reason: fromMerge ? "merge" : "rebind",
      });
      continue;
    }
    const r = b.record;
    const address = isAddressKind(k.kind);
    const refresh = address && t > r.updatedAtMs && t - r.updatedAtMs >= half;
    const gainsAuthority = address && isAuthority && !r.authority && t >= r.updatedAtMs;
    if (r.metadataHash !== hash || refresh || gainsAuthority) put(k, prior, recordFor(k, b, false));
  }

  if (listedRedirect && !index.has(keyId(listedRedirect)))
    index.set(keyId(listedRedirect), { ...listedRedirect, sources: [] });

  // The update's own id: a redirect to the canonical device.
  if (redirect) {
    const prior = reader.get(redirect);
    put(redirect, prior, { ...recordFor(redirect, null, true), assertedBy: "device-id" });
    index.set(keyId(redirect), { ...redirect, sources: [] });
    changes.push({ key: redirect, fromDeviceId: expiredOwner(prior), toDeviceId: canonical, reason: "redirect" });
  }

  // A merge: every binding of the retired device follows it.
  for (const e of mergeKeys) {
    if (kept.some((k) => keyId(k) === keyId(e))) continue;
    const b = live(reader.get(e));
    if (!b || b.record.canonicalDeviceId !== mergeFrom!.id) continue;
    const address = isAddressKind(e.kind);
    put(e, b, {
      ...base,
      updatedAtMs: b.record.updatedAtMs,
      assertedBy: b.record.assertedBy,
      source: b.record.source,
      authority: b.record.authority,
      expiresAtMs: address ? b.record.expiresAtMs : 0,
      keys: [],
    });
    index.set(keyId(e), { kind: e.kind, value: e.value, sources: e.sources });
    changes.push({ key: e, fromDeviceId: mergeFrom!.id, toDeviceId: canonical, reason: "merge" });
  }

  // Per-source address pruning: the address this source reported before no longer lands here.
  if (asserting && u.ip !== "" && u.source !== "" && !staleAddressReport) {
    for (const [id, e] of index) {
      if (!isAddressKind(e.kind) || currentAddresses.has(id) || !e.sources.includes(u.source)) continue;
      const rest = e.sources.filter((s) => s !== u.source);
      if (rest.length > 0) {
        index.set(id, { ...e, sources: rest });
        continue;
      }
      index.delete(id);
      const b = reader.get(e);
      if (b && b.record.canonicalDeviceId === canonical && t >= b.record.updatedAtMs) {
        deletes.push({ op: "delete", key: e, revision: b.revision });
        changes.push({ key: e, fromDeviceId: canonical, toDeviceId: null, reason: "delete" });
      }
    }
  }

  // Keys of the device the update did not mention still carry its identity: keep them in step.
  const written = new Set(writes.map((w) => keyId(w.key)));
  for (const e of index.values()) {
    if (written.has(keyId(e)) || deletes.some((d) => keyId(d.key) === keyId(e))) continue;
    const b = live(reader.get(e));
    if (b && b.record.canonicalDeviceId === canonical && b.record.metadataHash !== hash) {
      put(e, b, { ...b.record, ...base, updatedAtMs: Math.max(b.record.updatedAtMs, t), keys: [] });
    }
  }

  // The device record: identity plus the reverse index, written first.
  const newIndex = [...index.values()].sort(compareIndexed);
  const devicePrior = deviceBinding;
  const deviceUpdatedAt = deviceRecord ? Math.max(deviceRecord.updatedAtMs, t) : t;
  const deviceRecordNext: CanonicalRecord = {
    ...base,
    updatedAtMs: weakDevice
      ? deviceRecord && t - deviceRecord.updatedAtMs < half
        ? deviceRecord.updatedAtMs
        : deviceUpdatedAt
      : deviceUpdatedAt,
    assertedBy: deviceRecord?.assertedBy ?? assertion,
    source: deviceRecord?.source || u.source,
    authority: false,
    expiresAtMs: 0,
    keys: newIndex,
  };
  const deviceNext: CanonicalRecord = {
    ...deviceRecordNext,
    expiresAtMs: weakDevice ? deviceRecordNext.updatedAtMs + policy.weakKeyTtlMs : 0,
  };
  const deviceSteps: KeyWrite[] = [];
  const deviceChanged =
    !deviceRecord ||
    deviceRecord.metadataHash !== hash ||
    deviceRecord.expiresAtMs !== deviceNext.expiresAtMs ||
    !sameIndex(deviceRecord.keys, newIndex);
  if (deviceChanged) {
    const k = deviceKey(canonical);
    deviceSteps.push(
      devicePrior
        ? { op: "update", key: k, record: deviceNext, revision: devicePrior.revision }
        : { op: "create", key: k, record: deviceNext },
    );
    if (!deviceRecord)
      changes.unshift({ key: k, fromDeviceId: expiredOwner(devicePrior), toDeviceId: canonical, reason: "create" });
  }

  // A new device claims its id first, so no key ever names an id another device might take. For a
  // known device the record goes last: its conditional write is the commit point, and a writer that
  // changed the device meanwhile makes it fail, so this decision is made again on the new record
  // (rewriting any key just bound with the old identity, and listing it in the index).
  const claim = !deviceRecord;
  const steps = (claim ? [deviceSteps, writes, deletes] : [writes, deviceSteps, deletes]).filter((s) => s.length > 0);
  const outcome = !chosen ? "created" : steps.length > 0 ? "updated" : "unchanged";
  return {
    status: "decided",
    outcome,
    canonicalDeviceId: canonical,
    partition,
    matchedBy: chosen?.kind ?? null,
    ...(tombstone ? { tombstone } : {}),
    mergedDeviceIds: mergeFrom && mergeFrom.id !== u.deviceId ? [mergeFrom.id] : [],
    record: deviceChanged || !deviceRecord ? deviceNext : deviceRecord,
    steps,
    changes,
    conflicts,
    vetoes,
    staleLinks,
  };
}

/**
 * The order in which keys may decide: strong keys strongest first, then a stable device id (a name
 * that does not move), then addresses, then an address-derived id. The bare `ip` key is shared by
 * every partition, so it links only an update that has no partition.
 */
function candidateOrder(u: NormalizedUpdate, ranked: readonly IdentityKey[], stableId: boolean): IdentityKey[] {
  const strong = ranked.filter((k) => isStrongKind(k.kind));
  const id = ranked.filter((k) => k.kind === "device-id");
  const pip = ranked.filter((k) => k.kind === "partition-ip");
  const ip = u.partition === "" ? ranked.filter((k) => k.kind === "ip") : [];
  return stableId ? [...strong, ...id, ...pip, ...ip] : [...strong, ...pip, ...ip, ...id];
}

/** The id a new device takes: the update's id, else its address, else its strongest key. */
function naturalId(u: NormalizedUpdate, ranked: readonly IdentityKey[]): string {
  if (u.deviceId !== "") return u.deviceId;
  if (u.ip !== "") return partitionIp(u.partition, u.ip);
  return `${ranked[0]!.kind}:${ranked[0]!.value}`;
}

/** The partition-ip key an address-derived id names (`p:10.0.0.1` -> partition-ip `p:10.0.0.1`). */
function addressKeyOfId(id: string): IdentityKey | undefined {
  if (isIp(id)) return { kind: "partition-ip", value: id };
  const colon = id.indexOf(":");
  return colon > 0 && isIp(id.slice(colon + 1)) ? { kind: "partition-ip", value: id } : undefined;
}

/** Two identities that share a strong identifier and contradict each other in none but MACs. */
function sameDevice(a: Identity, b: Identity): boolean {
  return sharesStrongIdentifier(a, b) && conflictingKinds(a, b).every((c) => c === "mac");
}

/** `10.0.0.1`, `tenant-a:10.0.0.1`, `p:fe80::1`: names that come from an address and move with it. */
export function isAddressDerived(id: string): boolean {
  if (isIp(id)) return true;
  const colon = id.indexOf(":");
  return colon > 0 && isIp(id.slice(colon + 1));
}

function mergeSources(a: readonly string[] | undefined, b: readonly string[]): string[] {
  const out = [...(a ?? [])];
  for (const s of b) if (!out.includes(s)) out.push(s);
  return out.sort();
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
