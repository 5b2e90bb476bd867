import { partitionIp } from "./device-update.js";
import { InvalidArgument } from "./errors.js";
import type { IdentityKind } from "./identity-kind.js";

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
