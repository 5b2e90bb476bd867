import type { DeviceUpdate } from "../../domain/device-update.js";
import type { IdentityKey } from "../../domain/identity-key.js";
import { normalizeIp } from "../../domain/ip.js";
import type { Candidate } from "./backfill-plan.js";

/**
 * A candidate's sightings as updates. The first carries its address (unless too old to seed), MACs,
 * Armis id and up to two NetBox ids (the update format has two NetBox fields); further NetBox ids
 * follow in more updates. A retired id also carries the group key, so the map ties it to the group.
 */
export function sightings(
  c: Candidate,
  own: readonly IdentityKey[],
  groupKey: IdentityKey,
  dropAddress: boolean,
  withGroupKey: boolean,
): DeviceUpdate[] {
  const keys =
    withGroupKey && !own.some((k) => k.kind === groupKey.kind && k.value === groupKey.value)
      ? [...own, groupKey]
      : [...own];
  const netbox = keys.filter((k) => k.kind === "netbox-id");
  const rest = keys.filter((k) => k.kind !== "netbox-id");
  const base = {
    device_id: c.deviceId,
    partition: c.partition,
    ...(c.hostname ? { hostname: c.hostname } : {}),
    ...(c.source ? { source: c.source } : {}),
    timestamp: c.lastSeenMs,
  };
  const out: DeviceUpdate[] = [
    { ...base, ...(!dropAddress && c.ip ? { ip: c.ip } : {}), ...identityFields([...rest, ...netbox.slice(0, 2)]) },
  ];
  for (let i = 2; i < netbox.length; i += 2) out.push({ ...base, ...identityFields(netbox.slice(i, i + 2)) });
  return out;
}

/** Identity keys as the update fields normalizeUpdate() derives them from. */
export function identityFields(keys: readonly IdentityKey[]): Pick<DeviceUpdate, "mac" | "metadata"> {
  const metadata: Record<string, string> = {};
  const macs: string[] = [];
  const netbox: string[] = [];
  for (const k of keys) {
    if (k.kind === "armis-id") metadata.armis_device_id = k.value;
    else if (k.kind === "netbox-id") netbox.push(k.value);
    else if (k.kind === "mac") macs.push(k.value);
  }
  if (netbox.length > 0) {
    metadata.integration_type = "netbox";
    metadata.integration_id = netbox[0]!;
    if (netbox[1]) metadata.netbox_device_id = netbox[1];
  }
  return { ...(macs.length ? { mac: macs.join(",") } : {}), ...(Object.keys(metadata).length ? { metadata } : {}) };
}

/** The addresses a device claims: its own, `all_ips` (comma-separated) and `alt_ip:<ip>` keys. */
export function claimedIps(c: Candidate): string[] {
  const raw = [
    c.ip,
    ...(c.metadata.all_ips ?? "").split(","),
    ...Object.keys(c.metadata)
      .filter((k) => k.startsWith("alt_ip:"))
      .map((k) => k.slice(7)),
  ];
  const out = new Set<string>();
  for (const r of raw) {
    const ip = r.trim() === "" ? undefined : normalizeIp(r.trim());
    if (ip) out.add(ip);
  }
  return [...out];
}
