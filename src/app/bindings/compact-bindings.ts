import type { Binding, Revision } from "../../domain/binding.js";
import { IDENTITY_KINDS, type IdentityKind } from "../../domain/identity-kind.js";
import type { CanonicalRecord, IndexedKey, Pin } from "../../domain/record.js";

/** The part of a record every key of a device carries alike: held once per device, shared by its keys. */
interface SharedIdentity {
  readonly canonicalDeviceId: string;
  readonly partition: string;
  readonly metadataHash: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly provisionalSinceMs: number;
  /** Interned under its hash (a private copy, when another identity holds the hash, is not). */
  readonly interned: boolean;
}

/** One binding as the census counts it. */
export interface BindingSummary {
  readonly path: string;
  readonly expiresAtMs: number;
  /** The device the binding names. */
  readonly deviceId: string;
  readonly quarantined: boolean;
}

/** What few bindings carry (shared-MAC history, quarantine): kept aside, by slot. */
interface Rare {
  /** A source past the interned ones (more than 65 535 distinct sources). */
  readonly source?: string;
  readonly sharedRebindsMs?: readonly number[];
  readonly quarantinedSinceMs?: number;
  readonly contenders?: readonly string[];
  /** An operator's pin (ADR 0016). */
  readonly pin?: Pin;
}

const NO_KEYS: readonly IndexedKey[] = Object.freeze([]);
const KIND_CODE = new Map<IdentityKind, number>(IDENTITY_KINDS.map((k, i) => [k, i + 1]));
const ASSERTED_SHIFT = 16;
const AUTHORITY = 1 << 20;
const RARE = 1 << 21;
const SOURCE_MASK = 0xffff;
/** Separators of the packed reverse index: between keys, between a key's value and its sources, between sources. */
const KEY_SEP = "\u0000";
const VALUE_SEP = "\u0001";
const SOURCE_SEP = "\u0002";

/**
 * Bindings by path in compact form (issue 13): one slot per binding in typed arrays (revision,
 * timestamps, a small flags word), one shared identity per device (id, partition, hash, attributes)
 * counted by its keys, sources interned, a device's reverse index packed into one string. The
 * operation id is not kept: it only settles a lost write reply, which re-reads the store.
 * `get` builds a Binding on demand; callers treat it as immutable, as before.
 */
export class CompactBindings {
  private readonly index = new Map<string, number>();
  private capacity = 0;
  private revision = new Float64Array(0);
  private updatedAt = new Float64Array(0);
  private expiresAt = new Float64Array(0);
  private identityOf = new Int32Array(0);
  private flags = new Uint32Array(0);
  /** Reverse index (device-id bindings only), packed when no text in it holds a separator. */
  private keysOf: (string | readonly IndexedKey[] | undefined)[] = [];
  private readonly rare = new Map<number, Rare>();
  private readonly freeSlots: number[] = [];
  private next = 0;

  private readonly identities: (SharedIdentity | undefined)[] = [];
  private identityRefs = new Int32Array(0);
  private readonly identityByHash = new Map<string, number>();
  private readonly freeIdentities: number[] = [];

  private readonly partitions = new Map<string, string>();
  private readonly sources: string[] = [""];
  private readonly sourceIds = new Map<string, number>([["", 0]]);

  get size(): number {
    return this.index.size;
  }

  /** The shared identities held (devices, roughly): for tests and the memory report. */
  get identityCount(): number {
    return this.identityByHash.size;
  }

  has(path: string): boolean {
    return this.index.has(path);
  }

  revisionOf(path: string): Revision | undefined {
    const s = this.index.get(path);
    return s === undefined ? undefined : this.revision[s];
  }

  /** The device the binding at `path` names, without building the binding. */
  deviceIdOf(path: string): string | undefined {
    const s = this.index.get(path);
    return s === undefined ? undefined : this.identities[this.identityOf[s]!]!.canonicalDeviceId;
  }

  get(path: string): Binding | undefined {
    const s = this.index.get(path);
    return s === undefined ? undefined : this.binding(s);
  }

  set(path: string, b: Binding): void {
    let s = this.index.get(path);
    if (s === undefined) {
      s = this.allocate();
      this.index.set(flat(path), s);
    } else this.release(s);
    const r = b.record;
    this.revision[s] = b.revision;
    this.updatedAt[s] = r.updatedAtMs;
    this.expiresAt[s] = r.expiresAtMs;
    this.identityOf[s] = this.intern(r);
    const source = this.sourceId(r.source);
    let f = source ?? 0;
    if (r.assertedBy) f |= KIND_CODE.get(r.assertedBy)! << ASSERTED_SHIFT;
    if (r.authority) f |= AUTHORITY;
    if (source === undefined || r.sharedRebindsMs?.length || r.quarantinedSinceMs || r.contenders?.length || r.pin) {
      f |= RARE;
      this.rare.set(s, {
        ...(source === undefined ? { source: r.source } : {}),
        ...(r.sharedRebindsMs?.length ? { sharedRebindsMs: r.sharedRebindsMs } : {}),
        ...(r.quarantinedSinceMs ? { quarantinedSinceMs: r.quarantinedSinceMs } : {}),
        ...(r.contenders?.length ? { contenders: r.contenders } : {}),
        ...(r.pin ? { pin: r.pin } : {}),
      });
    }
    this.flags[s] = f;
    this.keysOf[s] = r.keys.length === 0 ? undefined : packable(r.keys) ? flat(packKeys(r.keys)) : r.keys;
  }

  delete(path: string): boolean {
    const s = this.index.get(path);
    if (s === undefined) return false;
    this.index.delete(path);
    this.release(s);
    this.freeSlots.push(s);
    return true;
  }

  clear(): void {
    for (const s of this.index.values()) {
      this.release(s);
      this.freeSlots.push(s);
    }
    this.index.clear();
  }

  /** Moves `path` to the young end of the eviction order (bounded mode). */
  touch(path: string): void {
    const s = this.index.get(path);
    if (s === undefined) return;
    this.index.delete(path);
    this.index.set(path, s);
  }

  /** The path least recently set or touched. */
  oldest(): string | undefined {
    return this.index.keys().next().value;
  }

  /**
   * What the bindings census needs of every binding, without building one. The yielded object is
   * reused from one binding to the next: read it before asking for the next.
   */
  *summaries(): IterableIterator<BindingSummary> {
    const out = { path: "", expiresAtMs: 0, deviceId: "", quarantined: false };
    for (const [path, s] of this.index) {
      out.path = path;
      out.expiresAtMs = this.expiresAt[s]!;
      out.deviceId = this.identities[this.identityOf[s]!]!.canonicalDeviceId;
      out.quarantined = (this.flags[s]! & RARE) !== 0 && (this.rare.get(s)?.quarantinedSinceMs ?? 0) > 0;
      yield out;
    }
  }

  *entries(): IterableIterator<[string, Binding]> {
    for (const [path, s] of this.index) yield [path, this.binding(s)];
  }

  keys(): IterableIterator<string> {
    return this.index.keys();
  }

  private binding(s: number): Binding {
    const id = this.identities[this.identityOf[s]!]!;
    const f = this.flags[s]!;
    const asserted = (f >>> ASSERTED_SHIFT) & 15;
    const packed = this.keysOf[s];
    // Optional fields are added only when set, as the codec's decoding does (no spreads: this runs per read).
    const record: { -readonly [K in keyof CanonicalRecord]: CanonicalRecord[K] } = {
      canonicalDeviceId: id.canonicalDeviceId,
      partition: id.partition,
      metadataHash: id.metadataHash,
      updatedAtMs: this.updatedAt[s]!,
      attributes: id.attributes,
      source: this.sources[f & SOURCE_MASK]!,
      authority: (f & AUTHORITY) !== 0,
      expiresAtMs: this.expiresAt[s]!,
      operationId: "",
      keys: packed === undefined ? NO_KEYS : typeof packed === "string" ? unpackKeys(packed) : packed,
    };
    if (asserted) record.assertedBy = IDENTITY_KINDS[asserted - 1]!;
    if (id.provisionalSinceMs > 0) record.provisionalSinceMs = id.provisionalSinceMs;
    if (f & RARE) {
      const rare = this.rare.get(s)!;
      if (rare.source !== undefined) record.source = rare.source;
      if (rare.sharedRebindsMs) record.sharedRebindsMs = rare.sharedRebindsMs;
      if (rare.quarantinedSinceMs) record.quarantinedSinceMs = rare.quarantinedSinceMs;
      if (rare.contenders) record.contenders = rare.contenders;
      if (rare.pin) record.pin = rare.pin;
    }
    return { record, revision: this.revision[s]! };
  }

  private allocate(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    if (this.next === this.capacity) this.grow();
    return this.next++;
  }

  /** Grows by half (not double): at millions of bindings the slack is memory the process holds. */
  private grow(): void {
    const cap = Math.max(1024, Math.ceil(this.capacity * 1.5));
    const f64 = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    this.revision = f64(this.revision);
    this.updatedAt = f64(this.updatedAt);
    this.expiresAt = f64(this.expiresAt);
    const i32 = new Int32Array(cap);
    i32.set(this.identityOf);
    this.identityOf = i32;
    const u32 = new Uint32Array(cap);
    u32.set(this.flags);
    this.flags = u32;
    this.capacity = cap;
  }

  /** Drops what slot `s` holds (its identity reference, rare fields); the slot itself stays allocated. */
  private release(s: number): void {
    const id = this.identityOf[s]!;
    if (--this.identityRefs[id]! === 0) {
      const ident = this.identities[id]!;
      if (ident.interned) this.identityByHash.delete(ident.metadataHash);
      this.identities[id] = undefined;
      this.freeIdentities.push(id);
    }
    if (this.flags[s]! & RARE) this.rare.delete(s);
    this.keysOf[s] = undefined;
  }

  private intern(r: CanonicalRecord): number {
    const known = this.identityByHash.get(r.metadataHash);
    if (known !== undefined && sameIdentity(this.identities[known]!, r)) {
      this.identityRefs[known]!++;
      return known;
    }
    const interned = known === undefined;
    const id = this.freeIdentities.pop() ?? this.identities.length;
    this.identities[id] = {
      canonicalDeviceId: flat(r.canonicalDeviceId),
      partition: this.partitionText(r.partition),
      metadataHash: r.metadataHash,
      attributes: r.attributes,
      provisionalSinceMs: r.provisionalSinceMs ?? 0,
      interned,
    };
    if (id >= this.identityRefs.length) {
      const refs = new Int32Array(Math.max(1024, Math.ceil(this.identityRefs.length * 1.5)));
      refs.set(this.identityRefs);
      this.identityRefs = refs;
    }
    this.identityRefs[id] = 1;
    if (interned) this.identityByHash.set(r.metadataHash, id);
    return id;
  }

  /** The interned source's number; undefined past 65 535 distinct sources (the binding keeps its own text). */
  /** Partitions are few: one copy of each name rather than one per decoded record. */
  private partitionText(partition: string): string {
    const known = this.partitions.get(partition);
    if (known !== undefined) return known;
    if (this.partitions.size < 65_536) this.partitions.set(partition, partition);
    return partition;
  }

  private sourceId(source: string): number | undefined {
    let id = this.sourceIds.get(source);
    if (id === undefined) {
      if (this.sources.length > SOURCE_MASK) return undefined;
      id = this.sources.length;
      this.sources.push(source);
      this.sourceIds.set(source, id);
    }
    return id;
  }
}

/**
 * The same text as one flat string. A string built piece by piece (`a + b`, a template, `+=` in a
 * loop: key paths, packed indexes, derived ids) is a tree of pieces in V8 until something reads it
 * character by character; kept as a map key or a field, the tree stays: a 52-character key path
 * built by the encoder held about 525 bytes of heap instead of about 110. Reading one character
 * makes V8 flatten it in place.
 */
function flat(s: string): string {
  s.charCodeAt(0);
  return s;
}

function sameIdentity(a: SharedIdentity, r: CanonicalRecord): boolean {
  if (
    a.canonicalDeviceId !== r.canonicalDeviceId ||
    a.partition !== r.partition ||
    a.provisionalSinceMs !== (r.provisionalSinceMs ?? 0)
  )
    return false;
  if (a.attributes === r.attributes) return true;
  const x = Object.keys(a.attributes);
  const y = Object.keys(r.attributes);
  if (x.length !== y.length) return false;
  for (const k of x) if (a.attributes[k] !== r.attributes[k]) return false;
  return true;
}

/** True when no value or source holds a separator character (below U+0003). */
function packable(keys: readonly IndexedKey[]): boolean {
  const unsafe = (t: string) => {
    for (let i = 0; i < t.length; i++) if (t.charCodeAt(i) < 3) return true;
    return false;
  };
  return !keys.some((k) => unsafe(k.value) || k.sources.some(unsafe));
}

function packKeys(keys: readonly IndexedKey[]): string {
  let out = "";
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (i > 0) out += KEY_SEP;
    out += String.fromCharCode(KIND_CODE.get(k.kind)! + 0x40) + k.value + VALUE_SEP + k.sources.join(SOURCE_SEP);
  }
  return out;
}

function unpackKeys(packed: string): IndexedKey[] {
  return packed.split(KEY_SEP).map((p) => {
    const v = p.indexOf(VALUE_SEP);
    const sources = p.slice(v + 1);
    return {
      kind: IDENTITY_KINDS[p.charCodeAt(0) - 0x41]!,
      value: p.slice(1, v),
      sources: sources === "" ? [] : sources.split(SOURCE_SEP),
    };
  });
}
