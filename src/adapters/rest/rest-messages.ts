import type { IdentityKey } from "../../domain/identity-key.js";
import type { CanonicalRecord } from "../../domain/record.js";
import type { HistoryPage } from "../../ports/device-store.js";
import type { DeviceListPage, DeviceView, LookupResult } from "../../ports/identity-service.js";

/*
 * The service's results as REST JSON (snake_case, the shapes of schemas.ts), written once; the gRPC
 * equivalents are in ../grpc/grpc-messages.ts.
 */

export function keyJson(k: IdentityKey) {
  return { kind: k.kind, value: k.value };
}

export function recordJson(r: CanonicalRecord) {
  return {
    canonical_device_id: r.canonicalDeviceId,
    partition: r.partition,
    metadata_hash: r.metadataHash,
    updated_at_unix_millis: r.updatedAtMs,
    // Serialized by the response schema, which copies what it declares: no copy needed here.
    attributes: r.attributes,
    provisional: (r.provisionalSinceMs ?? 0) > 0,
  };
}

export function lookupJson(r: LookupResult) {
  return {
    found: r.found,
    ...(r.record ? { record: recordJson(r.record) } : {}),
    ...(r.matchedKey ? { matched_key: keyJson(r.matchedKey) } : {}),
    ...(r.ambiguous ? { ambiguous: { key: keyJson(r.ambiguous.key), candidates: [...r.ambiguous.candidates] } } : {}),
    revision: r.revision,
    hydrated: r.hydrated,
  };
}

export function deviceJson(d: DeviceView) {
  return {
    device_id: d.deviceId,
    ...(d.redirectedTo ? { redirected_to: d.redirectedTo } : {}),
    record: recordJson(d.record),
    revision: d.revision,
    keys: d.keys.map(keyJson),
  };
}

export function historyJson(deviceId: string, page: HistoryPage) {
  return {
    device_id: deviceId,
    entries: page.entries.map((e) => ({
      id: e.id,
      at_unix_millis: e.atMs,
      actor: e.actor,
      key: keyJson(e.key),
      from_device_id: e.fromDeviceId,
      to_device_id: e.toDeviceId,
      revision: e.revision,
      reason: e.reason,
    })),
    ...(page.next !== undefined ? { next: page.next } : {}),
  };
}

export function deviceListJson(page: DeviceListPage) {
  return {
    devices: page.devices.map((d) => ({
      device_id: d.deviceId,
      partition: d.partition,
      ip: d.ip,
      hostname: d.hostname,
      source: d.source,
      provisional: d.provisional,
      first_seen_unix_millis: d.firstSeenMs,
      last_seen_unix_millis: d.lastSeenMs,
      keys: d.keys.map(keyJson),
    })),
    ...(page.nextCursor !== undefined ? { next_cursor: page.nextCursor } : {}),
  };
}
