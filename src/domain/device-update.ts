import type { IdentityKey } from "./identity-key.js";
import { normalizeIp } from "./ip.js";
import { parseMacList } from "./mac.js";
import { LIMITS, utf8Length, type RejectedIdentifier } from "./rejection.js";

/** What a source saw. */
export interface DeviceUpdate {
  readonly device_id?: string;
  readonly ip?: string;
  readonly partition?: string;
  readonly mac?: string;
  readonly hostname?: string;
  readonly source?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** RFC 3339 text or Unix milliseconds. */
  readonly timestamp?: string | number;
}

/** An update after validation: canonical identifiers only, every refusal listed. */
export interface NormalizedUpdate {
  readonly deviceId: string;
  readonly partition: string;
  readonly ip: string;
  readonly macs: readonly string[];
  readonly armisId: string;
  readonly netboxIds: readonly string[];
  readonly hostname: string;
  readonly source: string;
  /** Observation time: the update's timestamp, else the service clock. */
  readonly timeMs: number;
  /** Keys in derivation order: device-id, ip, partition-ip, armis-id, netbox-id, mac. */
  readonly keys: readonly IdentityKey[];
  readonly rejected: readonly RejectedIdentifier[];
}

export interface NormalizeOptions {
  readonly nowMs: number;
  readonly deniedMacs?: ReadonlySet<string>;
}

/**
 * Validates and derives keys. Invalid identifiers are listed with a reason and left
 * out; the rest of the update still counts.
 */
export function normalizeUpdate(u: DeviceUpdate, opts: NormalizeOptions): NormalizedUpdate {
  const rejected: RejectedIdentifier[] = [];
  const limited = (field: string, raw: string | undefined): string => {
    const v = (raw ?? "").trim();
    if (utf8Length(v) > LIMITS.identifierBytes) {
      rejected.push({ field, value: v.slice(0, 64), reason: "too_long" });
      return "";
    }
    return v;
  };

  let metadata = u.metadata ?? {};
  if (metadataBytes(metadata) > LIMITS.metadataBytes) {
    rejected.push({ field: "metadata", value: "", reason: "metadata_too_large" });
    metadata = {};
  }

  const givenId = limited("device_id", u.device_id);
  const partition = limited("partition", u.partition);
  const hostname = limited("hostname", u.hostname);
  const source = limited("source", u.source);

  let ip = "";
  const rawIp = limited("ip", u.ip);
  if (rawIp !== "") {
    const n = normalizeIp(rawIp);
    if (n === undefined) rejected.push({ field: "ip", value: rawIp, reason: "invalid_ip" });
    else ip = n;
  }

  const armisId = limited("metadata.armis_device_id", metadata.armis_device_id);
  const netboxIds: string[] = [];
  if ((metadata.integration_type ?? "").trim().toLowerCase() === "netbox") {
    for (const field of ["integration_id", "netbox_device_id"] as const) {
      const v = limited(`metadata.${field}`, metadata[field]);
      if (v !== "" && !netboxIds.includes(v)) netboxIds.push(v);
    }
  }

  let macs: string[] = [];
  const rawMac = u.mac ?? "";
  if (rawMac.trim() !== "") {
    if (utf8Length(rawMac) > LIMITS.identifierBytes * 16) {
      rejected.push({ field: "mac", value: rawMac.slice(0, 64), reason: "too_long" });
    } else {
      const parsed = parseMacList(rawMac, opts.deniedMacs);
      macs = parsed.macs;
      for (const r of parsed.rejected) rejected.push({ field: "mac", value: r.value, reason: r.reason });
    }
  }

  let timeMs = opts.nowMs;
  if (u.timestamp !== undefined && u.timestamp !== "") {
    const t = typeof u.timestamp === "number" ? u.timestamp : Date.parse(u.timestamp);
    if (Number.isFinite(t) && t > 0) timeMs = Math.trunc(t);
    else rejected.push({ field: "timestamp", value: String(u.timestamp), reason: "invalid_timestamp" });
  }

  // An update without an id is named by its address, as the reference's registry did.
  const deviceId = givenId !== "" ? givenId : ip !== "" ? partitionIp(partition, ip) : "";

  const keys: IdentityKey[] = [];
  const push = (kind: IdentityKey["kind"], value: string) => {
    if (value !== "" && !keys.some((k) => k.kind === kind && k.value === value)) keys.push({ kind, value });
  };
  push("device-id", deviceId);
  if (ip !== "") {
    push("ip", ip);
    push("partition-ip", partitionIp(partition, ip));
  }
  push("armis-id", armisId);
  for (const n of netboxIds) push("netbox-id", n);
  for (const m of macs) push("mac", m);

  return { deviceId, partition, ip, macs, armisId, netboxIds, hostname, source, timeMs, keys, rejected };
}

/** `<partition>:<ip>`, or the bare ip when there is no partition (the reference's rule). */
export function partitionIp(partition: string, ip: string): string {
  return partition === "" ? ip : `${partition}:${ip}`;
}

function metadataBytes(m: Readonly<Record<string, string>>): number {
  let n = 0;
  for (const [k, v] of Object.entries(m)) n += utf8Length(k) + utf8Length(String(v)) + 2;
  return n;
}
