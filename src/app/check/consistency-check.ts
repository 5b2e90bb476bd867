import { isLive, type Binding } from "../../domain/binding.js";
import { keyId, type IdentityKey } from "../../domain/identity-key.js";
import { parseKeyPath } from "../../domain/key-path.js";
import { identityOf } from "../../domain/record.js";
import type { DeviceRow, DeviceStore, IdentityKv } from "../../ports/index.js";
import { decodeBinding } from "../bindings/binding-store.js";

/** One disagreement between the map and the relational store; `idmap check` prints one per line. */
export type Finding =
  /** A key bound to a device whose record does not list it in its key index. */
  | { readonly kind: "key_not_listed"; readonly key: IdentityKey; readonly deviceId: string }
  /** A key bound to an id that was merged away (its device-id binding redirects). */
  | {
      readonly kind: "bound_to_retired";
      readonly key: IdentityKey;
      readonly deviceId: string;
      readonly redirectsTo: string;
    }
  /** A binding whose owner no audit row names as the key's new owner. */
  | { readonly kind: "unaudited_binding"; readonly key: IdentityKey; readonly deviceId: string }
  /** A device row that says something the map contradicts. */
  | {
      readonly kind: "row_disagrees";
      readonly deviceId: string;
      readonly field: "merged_into" | "armis_id" | "netbox_ids" | "ip";
      readonly row: string;
      readonly map: string;
    };

export interface CheckInput {
  readonly kv: IdentityKv;
  readonly namespace: string;
  /**
   * The relational stores of the service. One in production; tests that give each instance a
   * database of its own pass them all: the audit trail is their union.
   */
  readonly devices: readonly DeviceStore[];
  readonly nowMs: number;
}

/**
 * Walks the map and the relational store and reports every disagreement (issue 12): keys bound to a
 * device that does not list them, keys bound to a retired id, binding owners without an audit row,
 * device rows the map contradicts. Empty means consistent.
 */
export async function checkConsistency(input: CheckInput): Promise<Finding[]> {
  const { entries } = await input.kv.list(`${input.namespace}/`);
  const bindings: { key: IdentityKey; binding: Binding }[] = [];
  for (const e of entries) {
    const binding = decodeBinding(e.value, e.revision);
    if (!isLive(binding, input.nowMs)) continue;
    bindings.push({ key: parseKeyPath(e.key).key, binding });
  }
  // Each device-id binding is either the device's own record or a redirect of a retired id.
  const records = new Map<string, Binding>();
  const redirects = new Map<string, string>();
  for (const { key, binding } of bindings) {
    if (key.kind !== "device-id") continue;
    if (binding.record.canonicalDeviceId === key.value) records.set(key.value, binding);
    else redirects.set(key.value, binding.record.canonicalDeviceId);
  }

  const audited = auditTrail(input.devices);
  const findings: Finding[] = [];
  for (const { key, binding } of bindings) {
    const owner = binding.record.canonicalDeviceId;
    if (!(await audited(owner)).has(keyId(key))) findings.push({ kind: "unaudited_binding", key, deviceId: owner });
    if (key.kind === "device-id") continue;
    const retiredInto = redirects.get(owner);
    if (retiredInto !== undefined) {
      findings.push({ kind: "bound_to_retired", key, deviceId: owner, redirectsTo: retiredInto });
      continue;
    }
    // A hydrated binding is a cached relational answer, written without the device's record.
    if (binding.record.operationId.startsWith("hydrate-")) continue;
    const device = records.get(owner);
    if (device && !device.record.keys.some((k) => k.kind === key.kind && k.value === key.value))
      findings.push({ kind: "key_not_listed", key, deviceId: owner });
  }
  for (const store of input.devices)
    for await (const row of allRows(store)) findings.push(...(await rowFindings(row, records, redirects, audited)));
  return findings;
}

async function rowFindings(
  row: DeviceRow,
  records: ReadonlyMap<string, Binding>,
  redirects: ReadonlyMap<string, string>,
  audited: (deviceId: string) => Promise<ReadonlySet<string>>,
): Promise<Finding[]> {
  const out: Finding[] = [];
  const id = row.deviceId;
  // A merge is never undone: a row merged into Y whose id the map does not redirect to Y is wrong.
  if (row.mergedInto !== null) {
    const into = redirects.get(id) ?? (records.has(id) ? id : undefined);
    if (into !== undefined && into !== row.mergedInto)
      out.push({ kind: "row_disagrees", deviceId: id, field: "merged_into", row: row.mergedInto, map: into });
    return out;
  }
  const device = records.get(id);
  if (device) {
    // Strong identities never change on a device (the merge veto), so the row must carry the same.
    const map = identityOf(device.record);
    if (row.armisId !== "" && map.armisId !== "" && row.armisId !== map.armisId)
      out.push({ kind: "row_disagrees", deviceId: id, field: "armis_id", row: row.armisId, map: map.armisId });
    const foreign = row.netboxIds.filter((n) => map.netboxIds.length > 0 && !map.netboxIds.includes(n));
    if (foreign.length > 0)
      out.push({
        kind: "row_disagrees",
        deviceId: id,
        field: "netbox_ids",
        row: row.netboxIds.join(","),
        map: map.netboxIds.join(","),
      });
  }
  // The row's address must be one the map gave the device at some point (an audited binding): an
  // address the decision refused (an out-of-order report) never was. The device may hold nothing
  // now (its bindings expired): its trail still says what it held.
  if (row.ip !== "" && !(await audited(id)).has(keyId({ kind: "ip", value: row.ip })))
    out.push({ kind: "row_disagrees", deviceId: id, field: "ip", row: row.ip, map: "(never bound to the device)" });
  return out;
}

/** A device's keys that some audit row names it the new owner of; each device's trail is read once. */
function auditTrail(stores: readonly DeviceStore[]): (deviceId: string) => Promise<ReadonlySet<string>> {
  const read = new Map<string, ReadonlySet<string>>();
  return async (id) => {
    const known = read.get(id);
    if (known) return known;
    const keys = new Set<string>();
    for (const store of stores) {
      let before: number | undefined;
      do {
        const page = await store.history(id, { limit: 500, ...(before !== undefined ? { before } : {}) });
        for (const e of page.entries) if (e.toDeviceId === id) keys.add(keyId(e.key));
        before = page.next;
      } while (before !== undefined);
    }
    read.set(id, keys);
    return keys;
  };
}

async function* allRows(store: DeviceStore): AsyncGenerator<DeviceRow> {
  let after: string | undefined;
  for (;;) {
    const rows = await store.listDevices({ limit: 1000, ...(after !== undefined ? { afterDeviceId: after } : {}) });
    yield* rows;
    if (rows.length < 1000) return;
    after = rows[rows.length - 1]!.deviceId;
  }
}

/** One line per finding, for people: what is wrong, with the key and the device. */
export function describeFinding(f: Finding): string {
  switch (f.kind) {
    case "key_not_listed":
      return `key ${f.key.kind} ${f.key.value} is bound to ${f.deviceId}, whose record does not list it`;
    case "bound_to_retired":
      return `key ${f.key.kind} ${f.key.value} is bound to ${f.deviceId}, which was merged into ${f.redirectsTo}`;
    case "unaudited_binding":
      return `key ${f.key.kind} ${f.key.value} is bound to ${f.deviceId} with no audit row saying so`;
    case "row_disagrees":
      return `device row ${f.deviceId}: ${f.field} is ${f.row} in the database but ${f.map} in the map`;
  }
}
