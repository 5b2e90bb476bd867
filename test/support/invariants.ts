import { decodeBinding } from "../../src/app/bindings/binding-store.js";
import { isLive, type Binding } from "../../src/domain/binding.js";
import { keyId } from "../../src/domain/identity-key.js";
import { parseKeyPath } from "../../src/domain/key-path.js";
import { ATTR } from "../../src/domain/record.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";

export interface MapSnapshot {
  /** keyId → live binding. */
  readonly live: ReadonlyMap<string, { readonly kind: string; readonly value: string; readonly binding: Binding }>;
}

/** Every live binding of the namespace, read from the store itself (no cache). */
export async function snapshot(kv: IdentityKv, namespace: string, nowMs: number): Promise<MapSnapshot> {
  const { entries } = await kv.list(`${namespace}/`);
  const live = new Map<string, { kind: string; value: string; binding: Binding }>();
  for (const e of entries) {
    const b = decodeBinding(e.value, e.revision);
    if (!isLive(b, nowMs)) continue;
    const { key } = parseKeyPath(e.key);
    live.set(keyId(key), { kind: key.kind, value: key.value, binding: b });
  }
  return { live };
}

/**
 * The map's invariants, each a sentence a reader can check against design.md §3. Returns the
 * violations (empty when the map is consistent):
 *
 * 1. Every live binding names a device that exists: a live `device-id` binding of that id which is
 *    the device's own record (it names itself), so a redirect never points at another redirect.
 * 2. The device's record lists the key in its reverse index (how keys are found, pruned and moved
 *    on a merge without a scan).
 * 3. Every binding carries its device's identity (partition, attributes, hash): one read answers a
 *    lookup and the veto needs no extra read.
 * 4. Armis ids: an `armis-id` binding's device carries that Armis id (never another one), and a
 *    device record carrying an Armis id is the one its `armis-id` binding names (one device per Armis id).
 * 5. MACs: a `mac` binding's device lists that MAC.
 */
export function violations(snap: MapSnapshot): string[] {
  return findViolations(snap).map((v) => v.text);
}

export interface Violation {
  readonly rule: 1 | 2 | 3 | 4 | 5;
  /** keyId of the binding the violation is about. */
  readonly key: string;
  readonly device: string;
  readonly text: string;
}

export function findViolations(snap: MapSnapshot): Violation[] {
  const out: Violation[] = [];
  const push = (rule: Violation["rule"], key: string, device: string, text: string) =>
    out.push({ rule, key, device, text: `${rule}: ${text}` });
  const deviceRecord = (id: string) => snap.live.get(keyId({ kind: "device-id", value: id }))?.binding;
  for (const [id, { kind, value, binding }] of snap.live) {
    const dev = binding.record.canonicalDeviceId;
    const own = deviceRecord(dev);
    if (!own || own.record.canonicalDeviceId !== dev) {
      push(
        1,
        id,
        dev,
        `${id} names ${dev}, which has no device record of its own${own ? ` (it redirects to ${own.record.canonicalDeviceId})` : ""}`,
      );
      continue;
    }
    if (
      !(kind === "device-id" && value === dev) &&
      !own.record.keys.some((k) => k.kind === kind && k.value === value)
    ) {
      push(2, id, dev, `${id} is bound to ${dev}, whose index does not list it`);
    }
    const r = binding.record;
    if (
      r.metadataHash !== own.record.metadataHash ||
      r.partition !== own.record.partition ||
      JSON.stringify(r.attributes) !== JSON.stringify(own.record.attributes)
    ) {
      push(
        3,
        id,
        dev,
        `${id} carries another identity than its device ${dev}: ${JSON.stringify(r.attributes)} vs ${JSON.stringify(own.record.attributes)}`,
      );
    }
    if (kind === "armis-id" && own.record.attributes[ATTR.armis] !== value) {
      push(
        4,
        id,
        dev,
        `armis-id ${value} is bound to ${dev}, whose Armis id is ${own.record.attributes[ATTR.armis] ?? "(none)"}`,
      );
    }
    if (kind === "mac" && !(own.record.attributes[ATTR.mac] ?? "").split(",").includes(value)) {
      push(5, id, dev, `mac ${value} is bound to ${dev}, which does not list it`);
    }
    if (kind === "device-id" && value === dev) {
      const a = r.attributes[ATTR.armis];
      if (a) {
        const bound = snap.live.get(keyId({ kind: "armis-id", value: a }))?.binding.record.canonicalDeviceId;
        if (bound !== dev)
          push(4, id, dev, `device ${dev} carries Armis id ${a}, which is bound to ${bound ?? "nothing"}`);
      }
    }
  }
  return out;
}

/** The partition of items into groups by `label`, as a canonical string (group order and names do not matter). */
export function grouping<T>(items: readonly T[], name: (t: T) => string, label: (t: T) => string): string[] {
  const groups = new Map<string, string[]>();
  for (const t of items) {
    const l = label(t);
    const g = groups.get(l);
    if (g) g.push(name(t));
    else groups.set(l, [name(t)]);
  }
  return [...groups.values()].map((g) => [...new Set(g)].sort().join(" + ")).sort();
}
