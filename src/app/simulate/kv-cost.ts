/** KV round trips spent on published updates, read from the service's Prometheus text. */
export interface KvCounters {
  /** `identitymap_publish_kv_operations_total`, by outcome then op (read, write). */
  readonly ops: Readonly<Record<string, { readonly read: number; readonly write: number }>>;
  /** `identitymap_kv_publish_total`, by outcome. */
  readonly updates: Readonly<Record<string, number>>;
  /** `identitymap_kv_operations_total`, summed over every label: all KV calls, compaction included. */
  readonly allKvOps: number;
  /** `identitymap_binding_changes_total`, by `reason kind` (what the writes were for). */
  readonly changes: Readonly<Record<string, number>>;
  /** `identitymap_conflict_total`, by reason: CAS retries, refused rebinds, out-of-order reports. */
  readonly conflicts: Readonly<Record<string, number>>;
  /** `identitymap_provisional_devices_total`, by action: take-overs, absorptions, refused absorptions. */
  readonly provisional: Readonly<Record<string, number>>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/;

export function parseKvCounters(text: string): KvCounters {
  const ops: Record<string, { read: number; write: number }> = {};
  const updates: Record<string, number> = {};
  let allKvOps = 0;
  const changes: Record<string, number> = {};
  const conflicts: Record<string, number> = {};
  const provisional: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const [, name, rawLabels = "", rawValue] = m;
    const value = Number(rawValue);
    if (!Number.isFinite(value)) continue;
    const labels = Object.fromEntries([...rawLabels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (name === "identitymap_publish_kv_operations_total") {
      const o = (ops[labels.outcome ?? ""] ??= { read: 0, write: 0 });
      if (labels.op === "read") o.read += value;
      if (labels.op === "write") o.write += value;
    } else if (name === "identitymap_kv_publish_total") {
      updates[labels.outcome ?? ""] = (updates[labels.outcome ?? ""] ?? 0) + value;
    } else if (name === "identitymap_kv_operations_total") {
      allKvOps += value;
    } else if (name === "identitymap_binding_changes_total") {
      const k = `${labels.reason ?? ""} ${labels.kind ?? ""}`;
      changes[k] = (changes[k] ?? 0) + value;
    } else if (name === "identitymap_conflict_total") {
      conflicts[labels.reason ?? ""] = (conflicts[labels.reason ?? ""] ?? 0) + value;
    } else if (name === "identitymap_provisional_devices_total") {
      provisional[labels.action ?? ""] = (provisional[labels.action ?? ""] ?? 0) + value;
    }
  }
  return { ops, updates, allKvOps, changes, conflicts, provisional };
}

/** What happened between two scrapes. */
export function kvDelta(before: KvCounters, after: KvCounters): KvCounters {
  const ops: Record<string, { read: number; write: number }> = {};
  for (const [k, v] of Object.entries(after.ops)) {
    const b = before.ops[k] ?? { read: 0, write: 0 };
    ops[k] = { read: v.read - b.read, write: v.write - b.write };
  }
  const updates: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.updates)) updates[k] = v - (before.updates[k] ?? 0);
  return {
    ops,
    updates,
    allKvOps: after.allKvOps - before.allKvOps,
    changes: positiveDelta(before.changes, after.changes),
    conflicts: positiveDelta(before.conflicts, after.conflicts),
    provisional: positiveDelta(before.provisional, after.provisional),
  };
}

function positiveDelta(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}
