import { randomUUID } from "node:crypto";
import type { Binding } from "../../domain/binding.js";
import { isLive } from "../../domain/binding.js";
import { partitionIp } from "../../domain/device-update.js";
import { InvalidArgument, NotFound } from "../../domain/errors.js";
import { isAddressKind, parseKind, type IdentityKind } from "../../domain/identity-kind.js";
import { keyId, type IdentityKey } from "../../domain/identity-key.js";
import { normalizeIp } from "../../domain/ip.js";
import { validateNamespace } from "../../domain/key-path.js";
import { normalizeMac } from "../../domain/mac.js";
import { LIMITS, utf8Length } from "../../domain/rejection.js";
import { attributesOf, identityHash, type CanonicalRecord } from "../../domain/record.js";
import type { ResolutionPolicy } from "../../domain/resolution.js";
import type { DeviceView, LookupRequest, LookupResult } from "../../ports/identity-service.js";
import type { DeviceRow, LookupVia } from "../../ports/index.js";
import type { BindingStore } from "../bindings/binding-store.js";
import { checkBatchSize, type ServiceDeps } from "../service-deps.js";

export type { DeviceView, LookupRequest, LookupResult };

export interface LookupDeps extends ServiceDeps {
  /** Write relational answers back to the map (flag on). */
  readonly hydrate: boolean;
  /** Builds a store for a namespace other than the configured one (no cache). */
  readonly storeFor: (namespace: string) => BindingStore;
}

/**
 * Lookups: keys in the order given, each from the map first (local cache, then the
 * store), then the relational store; a relational hit is written back (hydration) when enabled.
 */
export class LookupService {
  constructor(private readonly deps: LookupDeps) {}

  /** Validates and normalizes lookup keys; the field named in errors is `identity_keys[i]`. */
  static parseKeys(req: LookupRequest): IdentityKey[] {
    const keys: IdentityKey[] = [];
    req.identityKeys.forEach((k, i) => {
      const field = `identity_keys[${i}]`;
      const kind = parseKind(String(k.kind ?? ""));
      if (!kind) throw new InvalidArgument(`${field}.kind`, `unknown kind ${JSON.stringify(k.kind)}`);
      const value = normalizeKeyValue(kind, String(k.value ?? ""), `${field}.value`);
      if (!keys.some((x) => x.kind === kind && x.value === value)) keys.push({ kind, value });
    });
    const hint = (req.ipHint ?? "").trim();
    if (hint !== "") {
      const ip = normalizeIp(hint);
      if (!ip) throw new InvalidArgument("ip_hint", `${JSON.stringify(hint)} is not an IP address`);
      if (!keys.some((x) => x.kind === "ip" && x.value === ip)) keys.push({ kind: "ip", value: ip });
    }
    if (keys.length === 0)
      throw new InvalidArgument("identity_keys", "at least one identity key or an ip_hint is required");
    return keys;
  }

  async lookup(req: LookupRequest): Promise<LookupResult> {
    return this.measured(() => this.lookupKeys(LookupService.parseKeys(req), req.namespace));
  }

  /** Runs one lookup and counts it: where the answer came from, and how long it took. */
  private async measured(run: () => Promise<LookupResult>): Promise<LookupResult> {
    const start = performance.now();
    let via: LookupVia = "error";
    let found = false;
    try {
      const r = await run();
      via = r.resolvedVia;
      found = r.found;
      return r;
    } catch (e) {
      // A bad request is the caller's problem, not a store failure: it must not page anyone.
      if (e instanceof InvalidArgument) via = "invalid";
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
    const parsed = reqs.map((r, i) => {
      try {
        return LookupService.parseKeys(r);
      } catch (e) {
        if (e instanceof InvalidArgument)
          throw new InvalidArgument(`lookups[${i}].${e.field}`, e.message.slice(e.field.length + 2));
        throw e;
      }
    });
    return Promise.all(reqs.map((r, i) => this.measured(() => this.lookupKeys(parsed[i]!, r.namespace))));
  }

  private async lookupKeys(keys: readonly IdentityKey[], namespace: string | undefined): Promise<LookupResult> {
    const store =
      namespace && validateNs(namespace) !== this.deps.store.namespace
        ? this.deps.storeFor(validateNs(namespace))
        : this.deps.store;
    const now = this.deps.clock.nowMs();
    // Keys answer in the order given. The first key the cache holds live ends the search; the keys
    // before it that the cache does not know are asked of the store in one batch read.
    let kvFailure: unknown;
    const paths = keys.map((k) => store.path(k));
    const firstCached = paths.findIndex((p) => isLive(store.peekPath(p), now));
    const ask = firstCached < 0 ? keys.length : firstCached;
    if (ask > 0) {
      try {
        const found = await store.getMany(keys.slice(0, ask));
        for (let i = 0; i < ask; i++) {
          const b = found[i];
          if (!isLive(b, now)) continue;
          store.notePath(paths[i]!, b);
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
      const row = await this.deps.devices.findByIdentity(key);
      if (!row) continue;
      // An address not seen for the weak-key TTL reads as absent everywhere, here too: answering it
      // would also hydrate it back into the map, fresh, once compaction had removed it.
      if (isAddressKind(key.kind) && row.lastSeenMs + this.deps.policy.weakKeyTtlMs <= now) continue;
      const record = recordFromRow(row, key.kind, now, this.deps.policy);
      const hydrated = this.deps.hydrate && kvFailure === undefined ? await this.hydrate(store, key, record) : false;
      return { found: true, record, matchedKey: key, revision: 0, hydrated, resolvedVia: "db" };
    }
    return { found: false, revision: 0, hydrated: false, resolvedVia: "miss" };
  }

  /** Writes the matched key only, if absent. Failures never fail the lookup. */
  private async hydrate(store: BindingStore, key: IdentityKey, record: CanonicalRecord): Promise<boolean> {
    try {
      const revision = await store.apply({ op: "create", key, record }, this.deps.policy.weakKeyTtlMs);
      this.deps.metrics.bindingChange("hydrate", key.kind);
      this.deps.log.info(
        {
          audit: true,
          actor: "hydration",
          kind: key.kind,
          key: key.value,
          from: null,
          to: record.canonicalDeviceId,
          revision,
          reason: "hydrate",
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
          reason: "hydrate",
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

/** The longest canonical IP text (an IPv6 address with an embedded IPv4 one). */
const MAX_IP_TEXT = 45;

/** Lookup values are normalized like published ones, so `aa-bb-cc-dd-ee-ff` finds `AA:BB:...`. */
export function normalizeKeyValue(kind: IdentityKind, raw: string, field: string): string {
  const v = raw.trim();
  if (v === "") throw new InvalidArgument(field, "must not be empty");
  // The publish limit: no longer value can be in the map, and an overlong key must
  // never reach a backend (NATS drops the whole connection on a subject over 4 KiB).
  const max = kind === "partition-ip" ? LIMITS.identifierBytes + 1 + MAX_IP_TEXT : LIMITS.identifierBytes;
  if (utf8Length(v) > max) throw new InvalidArgument(field, `longer than ${max} bytes`);
  switch (kind) {
    case "mac": {
      const r = normalizeMac(v);
      if (!r.ok) throw new InvalidArgument(field, `${JSON.stringify(v)} is not a usable MAC (${r.reason})`);
      return r.mac;
    }
    case "ip": {
      const ip = normalizeIp(v);
      if (!ip) throw new InvalidArgument(field, `${JSON.stringify(v)} is not an IP address`);
      return ip;
    }
    case "partition-ip": {
      const ip = normalizeIp(v);
      if (ip) return ip;
      const colon = v.indexOf(":");
      const tail = colon > 0 ? normalizeIp(v.slice(colon + 1)) : undefined;
      if (!tail) throw new InvalidArgument(field, `${JSON.stringify(v)} is not <partition>:<ip>`);
      return partitionIp(v.slice(0, colon).trim(), tail);
    }
    default:
      return v;
  }
}

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
