import { randomUUID } from "node:crypto";
import type { Binding } from "../../domain/binding.js";
import { isLive } from "../../domain/binding.js";
import { partitionIp } from "../../domain/device-update.js";
import { BatchTooLarge, InvalidArgument, NotFound } from "../../domain/errors.js";
import { ambiguityOf } from "../../domain/shared-identifier.js";
import { isAddressKind, parseKind, type IdentityKind } from "../../domain/identity-kind.js";
import { keyId, type IdentityKey } from "../../domain/identity-key.js";
import { normalizeIp } from "../../domain/ip.js";
import { normalizeKeyValue } from "../../domain/lookup-query.js";
import { validateNamespace } from "../../domain/key-path.js";
import { attributesOf, identityHash, type CanonicalRecord } from "../../domain/record.js";
import type { ResolutionPolicy } from "../../domain/resolution.js";
import type { AsOfResult, DeviceView, LookupRequest, LookupResult } from "../../ports/identity-service.js";
import type { DeviceRow, LookupVia } from "../../ports/index.js";
import type { BindingStore } from "../bindings/binding-store.js";
import { checkBatchSize, type ServiceDeps } from "../service-deps.js";
import { lookupAsOf } from "./as-of.js";

export type { DeviceView, LookupRequest, LookupResult };

export interface LookupDeps extends ServiceDeps {
  /** Write relational answers back to the map (flag on). */
  readonly hydrate: boolean;
  /** Builds a store for a namespace other than the configured one (no cache). */
  readonly storeFor: (namespace: string) => BindingStore;
  /** Namespaces besides the configured one that hydration may write into (IDMAP_HYDRATE_NAMESPACES). */
  readonly hydrateNamespaces?: ReadonlySet<string>;
  /** Keys one lookup may carry, and all the lookups of one batch together. */
  readonly maxLookupKeys?: number;
  readonly maxBatchKeys?: number;
}

/**
 * Lookups: keys in the order given, each from the map first (local cache, then the
 * store), then the relational store; a relational hit is written back (hydration) when enabled.
 */
export class LookupService {
  constructor(private readonly deps: LookupDeps) {}

  /**
   * Validates and normalizes lookup keys; the field named in errors is `identity_keys[i]`. The count
   * is checked before any key is parsed and duplicates are dropped through a set: a request's work is
   * linear in its size and capped (defect 2 of issue 12: a quadratic dedup of 50 000 keys froze the service).
   */
  static parseKeys(req: LookupRequest, maxKeys = Number.POSITIVE_INFINITY): IdentityKey[] {
    if (req.identityKeys.length > maxKeys) throw new BatchTooLarge("identity_keys", req.identityKeys.length, maxKeys);
    const keys: IdentityKey[] = [];
    const seen = new Set<string>();
    const add = (key: IdentityKey) => {
      const id = keyId(key);
      if (seen.has(id)) return;
      seen.add(id);
      keys.push(key);
    };
    req.identityKeys.forEach((k, i) => {
      const field = `identity_keys[${i}]`;
      const kind = parseKind(String(k.kind ?? ""));
      if (!kind) throw new InvalidArgument(`${field}.kind`, `unknown kind ${JSON.stringify(k.kind)}`);
      add({ kind, value: normalizeKeyValue(kind, String(k.value ?? ""), `${field}.value`) });
    });
    const hint = (req.ipHint ?? "").trim();
    if (hint !== "") {
      const ip = normalizeIp(hint);
      if (!ip) throw new InvalidArgument("ip_hint", `${JSON.stringify(hint)} is not an IP address`);
      add({ kind: "ip", value: ip });
    }
    if (keys.length === 0)
      throw new InvalidArgument("identity_keys", "at least one identity key or an ip_hint is required");
    return keys;
  }

  lookup(req: LookupRequest): Promise<LookupResult> {
    return this.measured(req);
  }

  /**
   * Runs one lookup (of `keys`, else the request's keys, parsed here) and counts it: where the answer
   * came from, and how long it took. No closure per lookup: this is the lookup path's hot frame.
   */
  private async measured(req: LookupRequest, keys?: readonly IdentityKey[]): Promise<LookupResult> {
    const start = performance.now();
    let via: LookupVia = "error";
    let found = false;
    try {
      const r = await this.lookupKeys(keys ?? LookupService.parseKeys(req, this.deps.maxLookupKeys), req);
      via = r.resolvedVia;
      found = r.found;
      return r;
    } catch (e) {
      // A bad request is the caller's problem, not a store failure: it must not page anyone.
      if (e instanceof InvalidArgument || e instanceof BatchTooLarge) via = "invalid";
      throw e;
    } finally {
      this.deps.metrics.lookup(via, found, (performance.now() - start) / 1000);
    }
  }

  /**
   * Many lookups, answered in request order. Every lookup is validated before any runs, so a bad one
   * fails the request cleanly; its fields are named `lookups[i].…`.
   */
  async lookupMany(reqs: readonly LookupRequest[]): Promise<LookupResult[]> {
    checkBatchSize("lookups", reqs.length, this.deps.maxBatch);
    const maxBatchKeys = this.deps.maxBatchKeys ?? Number.POSITIVE_INFINITY;
    let total = 0;
    for (const r of reqs) total += r.identityKeys.length + (r.ipHint ? 1 : 0);
    if (total > maxBatchKeys) throw new BatchTooLarge("lookups[].identity_keys", total, maxBatchKeys);
    const parsed = reqs.map((r, i) => {
      try {
        return LookupService.parseKeys(r, this.deps.maxLookupKeys);
      } catch (e) {
        if (e instanceof InvalidArgument)
          throw new InvalidArgument(`lookups[${i}].${e.field}`, e.message.slice(e.field.length + 2));
        if (e instanceof BatchTooLarge) throw new BatchTooLarge(`lookups[${i}].${e.field}`, e.size, e.limit);
        throw e;
      }
    });
    return Promise.all(reqs.map((r, i) => this.measured(r, parsed[i]!)));
  }

  private async lookupKeys(keys: readonly IdentityKey[], req: LookupRequest): Promise<LookupResult> {
    const namespace = req.namespace ? validateNs(req.namespace) : this.deps.store.namespace;
    const store = namespace !== this.deps.store.namespace ? this.deps.storeFor(namespace) : this.deps.store;
    // Hydration writes only where the configuration says the map lives, and only for writers.
    const mayHydrate =
      this.deps.hydrate &&
      req.mayWrite === true &&
      (namespace === this.deps.store.namespace || (this.deps.hydrateNamespaces?.has(namespace) ?? false));
    const now = this.deps.clock.nowMs();
    // Keys answer in the order given. The first key the cache holds live ends the search; the keys
    // before it that the cache does not know are asked of the store in one batch read.
    let kvFailure: unknown;
    // A quarantined identifier, or a MAC evidently different devices took from each other within
    // the window, names several devices: it answers nothing confidently, here or from the relational
    // store; the keys after it still may. A miss then says why.
    let ambiguous = undefined as LookupResult["ambiguous"];
    const sharedPolicy = this.deps.policy.sharedIdentifiers;
    const shared = (key: IdentityKey, b: Binding): boolean => {
      const candidates = ambiguityOf(b.record, now, sharedPolicy);
      if (!candidates) return false;
      ambiguous ??= { key, candidates };
      return true;
    };
    const paths = keys.map((k) => store.path(k));
    const firstCached = paths.findIndex((p, i) => {
      const b = store.peekPath(p);
      return isLive(b, now) && !shared(keys[i]!, b);
    });
    const ask = firstCached < 0 ? keys.length : firstCached;
    if (ask > 0) {
      try {
        const found = await store.getMany(keys.slice(0, ask));
        for (let i = 0; i < ask; i++) {
          const b = found[i];
          if (!isLive(b, now)) continue;
          store.notePath(paths[i]!, b);
          if (shared(keys[i]!, b)) continue;
          return {
            found: true,
            record: b.record,
            matchedKey: keys[i]!,
            revision: b.revision,
            hydrated: false,
            resolvedVia: "kv",
          };
        }
      } catch (e) {
        kvFailure = e;
        this.deps.log.warn({ err: String(e), keys: ask }, "identity KV lookup failed; trying the relational store");
      }
    }
    if (firstCached >= 0) {
      const cached = store.peekPath(paths[firstCached]!)!;
      return {
        found: true,
        record: cached.record,
        matchedKey: keys[firstCached]!,
        revision: cached.revision,
        hydrated: false,
        resolvedVia: "cache",
      };
    }
    for (const key of keys) {
      if (ambiguous && keyId(ambiguous.key) === keyId(key)) continue;
      const row = await this.deps.devices.findByIdentity(key);
      if (!row) continue;
      // An address not seen for the weak-key TTL reads as absent everywhere, here too: answering it
      // would also hydrate it back into the map, fresh, once compaction had removed it.
      if (isAddressKind(key.kind) && row.lastSeenMs + this.deps.policy.weakKeyTtlMs <= now) continue;
      const record = recordFromRow(row, key.kind, now, this.deps.policy);
      const hydrated = mayHydrate && kvFailure === undefined ? await this.hydrate(store, key, record) : false;
      return { found: true, record, matchedKey: key, revision: 0, hydrated, resolvedVia: "db" };
    }
    // The map could not be asked: "no such device" would be a guess, and a caller would act on it.
    if (ambiguous) return { found: false, revision: 0, hydrated: false, resolvedVia: "miss", ambiguous };
    if (kvFailure !== undefined) throw kvFailure;
    return { found: false, revision: 0, hydrated: false, resolvedVia: "miss" };
  }

  /** Writes the matched key only, if absent. Failures never fail the lookup. */
  private async hydrate(store: BindingStore, key: IdentityKey, record: CanonicalRecord): Promise<boolean> {
    try {
      const revision = await store.apply({ op: "create", key, record }, this.deps.policy.weakKeyTtlMs);
      this.deps.metrics.bindingChange("hydrated", key.kind);
      this.deps.log.info(
        {
          audit: true,
          actor: "hydration",
          kind: key.kind,
          key: key.value,
          from: null,
          to: record.canonicalDeviceId,
          revision,
          reason: "hydrated",
        },
        "binding change",
      );
      await this.deps.devices.appendAudit([
        {
          atMs: record.updatedAtMs,
          actor: "hydration",
          key,
          fromDeviceId: null,
          toDeviceId: record.canonicalDeviceId,
          revision,
          reason: "hydrated",
        },
      ]);
      return true;
    } catch (e) {
      this.deps.log.debug({ err: String(e), kind: key.kind }, "hydration skipped");
      return false;
    }
  }

  /** The device's record, every key bound to it, and where it redirects when it was merged. */
  async device(deviceId: string): Promise<DeviceView> {
    const id = deviceId.trim();
    if (id === "") throw new InvalidArgument("device_id", "must not be empty");
    const store = this.deps.store;
    const now = this.deps.clock.nowMs();
    const own = await this.binding(store, { kind: "device-id", value: id });
    if (isLive(own, now)) {
      const canonical = own.record.canonicalDeviceId;
      const dev = canonical === id ? own : await this.binding(store, { kind: "device-id", value: canonical });
      const target = isLive(dev, now) ? dev : own;
      const view = new Map<string, Binding | null>();
      await store.load(target.record.keys, view, false);
      const keys: IdentityKey[] = [{ kind: "device-id", value: canonical }];
      for (const k of target.record.keys) {
        const b = view.get(keyId(k));
        if (isLive(b, now) && b.record.canonicalDeviceId === canonical) keys.push({ kind: k.kind, value: k.value });
      }
      return {
        deviceId: id,
        record: target.record,
        revision: target.revision,
        keys,
        ...(canonical !== id ? { redirectedTo: canonical } : {}),
      };
    }
    const row = await this.deps.devices.getDevice(id);
    if (!row) throw new NotFound(`device ${JSON.stringify(id)} is not known`);
    const canonical = row.mergedInto ?? row.canonicalDeviceId;
    const target = canonical !== id ? ((await this.deps.devices.getDevice(canonical)) ?? row) : row;
    return {
      deviceId: id,
      record: recordFromRow(target, "device-id", now, this.deps.policy),
      revision: 0,
      keys: rowKeys(target),
      ...(canonical !== id ? { redirectedTo: canonical } : {}),
    };
  }

  /** As-of lookups (ADR 0016): who held the identifier at `atMs`, from the audit trail. */
  asOf(identityKeys: readonly { kind: string; value: string }[], atMs: number): Promise<AsOfResult> {
    const keys = LookupService.parseKeys({ identityKeys }, this.deps.maxLookupKeys);
    return lookupAsOf(this.deps.devices, keys, atMs);
  }

  private async binding(store: BindingStore, key: IdentityKey): Promise<Binding | null> {
    return store.peekPath(store.path(key)) ?? (await store.get(key));
  }
}

function validateNs(ns: string): string {
  try {
    return validateNamespace(ns);
  } catch (e) {
    throw new InvalidArgument("namespace", e instanceof Error ? e.message : String(e));
  }
}

/** Moved to the domain so the client's IdentityCache normalizes lookups with the same code (issue 15). */
export { normalizeKeyValue };

/** A record for a relational answer, shaped like the map's own. */
export function recordFromRow(
  row: DeviceRow,
  kind: IdentityKind,
  now: number,
  policy: ResolutionPolicy,
): CanonicalRecord {
  const canonical = row.mergedInto ?? row.canonicalDeviceId;
  const attributes = attributesOf({
    armisId: row.armisId,
    netboxIds: row.netboxIds,
    macs: row.macs,
    hostname: row.hostname,
  });
  return {
    canonicalDeviceId: canonical,
    partition: row.partition,
    metadataHash: identityHash(canonical, row.partition, attributes),
    updatedAtMs: now,
    attributes,
    assertedBy: kind,
    source: "hydration",
    authority: false,
    expiresAtMs: isAddressKind(kind) ? now + policy.weakKeyTtlMs : 0,
    operationId: `hydrate-${randomUUID()}`,
    keys: [],
  };
}

function rowKeys(row: DeviceRow): IdentityKey[] {
  const keys: IdentityKey[] = [{ kind: "device-id", value: row.mergedInto ?? row.canonicalDeviceId }];
  if (row.armisId) keys.push({ kind: "armis-id", value: row.armisId });
  for (const n of row.netboxIds) keys.push({ kind: "netbox-id", value: n });
  for (const m of row.macs) keys.push({ kind: "mac", value: m });
  if (row.ip)
    keys.push({ kind: "partition-ip", value: partitionIp(row.partition, row.ip) }, { kind: "ip", value: row.ip });
  return keys;
}
