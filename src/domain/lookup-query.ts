import { partitionIp } from "./device-update.js";
import { InvalidArgument } from "./errors.js";
import type { IdentityKind } from "./identity-kind.js";
import { normalizeIp } from "./ip.js";
import { normalizeMac } from "./mac.js";
import { LIMITS, utf8Length } from "./rejection.js";

/** A lookup by named identifiers, as the REST GET parameters and the CLI `lookup` flags give it. */
export interface LookupQuery {
  readonly mac?: string | undefined;
  readonly ip?: string | undefined;
  readonly partition?: string | undefined;
  readonly armisId?: string | undefined;
  readonly netboxId?: string | undefined;
  readonly deviceId?: string | undefined;
}

/**
 * The one rule turning a query into keys, strongest first: armis, netbox, mac, partition+ip, ip,
 * device id. Blank values count as absent. A partition without an ip names no device, so it is an
 * error rather than silently dropped; a query naming nothing is an error too.
 */
export function queryKeys(q: LookupQuery): { kind: IdentityKind; value: string }[] {
  const keys: { kind: IdentityKind; value: string }[] = [];
  const has = (v: string | undefined): v is string => v !== undefined && v.trim() !== "";
  if (has(q.armisId)) keys.push({ kind: "armis-id", value: q.armisId });
  if (has(q.netboxId)) keys.push({ kind: "netbox-id", value: q.netboxId });
  if (has(q.mac)) keys.push({ kind: "mac", value: q.mac });
  if (has(q.partition) && !has(q.ip))
    throw new InvalidArgument("partition", "needs ip: a partition alone names no device");
  if (has(q.ip)) {
    if (has(q.partition)) keys.push({ kind: "partition-ip", value: partitionIp(q.partition.trim(), q.ip.trim()) });
    keys.push({ kind: "ip", value: q.ip });
  }
  if (has(q.deviceId)) keys.push({ kind: "device-id", value: q.deviceId });
  if (keys.length === 0)
    throw new InvalidArgument("query", "give at least one of mac, ip, armis_id, netbox_id, device_id");
  return keys;
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
