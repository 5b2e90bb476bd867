import type { Binding, BindingChange, Revision } from "../../domain/binding.js";
import { RevisionConflict } from "../../domain/errors.js";
import { keyId, type IdentityKey } from "../../domain/identity-key.js";
import type { Resolved } from "../../domain/resolution.js";
import type { Logger } from "../logger.js";
import type { BindingStore } from "../bindings/binding-store.js";

/** A binding change with the revision it produced (or removed), for the audit trail. */
export interface AuditedChange {
  readonly change: BindingChange;
  readonly revision: Revision | null;
}

interface Written {
  readonly key: IdentityKey;
  /** The binding before this update's first attempt touched it (null: absent). */
  readonly prior: Binding | null;
  readonly revision: Revision | null;
  readonly change?: BindingChange;
}

/**
 * The writes that attempts of one update applied before losing a CAS. The attempt that finally
 * decides may decide differently (defect 3 of issue 12: the retry refused the address as out of
 * order), and what the earlier attempts bound must then be undone, or audited when it stands.
 */
export class EarlierWrites {
  private readonly writes = new Map<string, Written>();
  /** Deletes an attempt meant to make but never reached (they come after the commit point). */
  private readonly unreached = new Map<string, IdentityKey>();

  get isEmpty(): boolean {
    return this.writes.size === 0 && this.unreached.size === 0;
  }

  /** Records what an attempt's decision managed to write before it failed. */
  note(d: Resolved, view: ReadonlyMap<string, Binding | null>, landed: ReadonlyMap<string, Revision | null>): void {
    for (const step of d.steps)
      for (const w of step) {
        const id = keyId(w.key);
        if (!landed.has(id)) {
          if (w.op === "delete") this.unreached.set(id, w.key);
          continue;
        }
        // A later attempt that finds the key already bound (by an earlier one) only refreshes it:
        // the change to audit is the first attempt's, against the binding before any of them.
        const before = this.writes.get(id);
        const change = before?.change ?? d.changes.find((c) => keyId(c.key) === id);
        this.writes.set(id, {
          key: w.key,
          prior: before ? before.prior : (view.get(id) ?? null),
          revision: before?.change ? before.revision : (landed.get(id) ?? null),
          ...(change ? { change } : {}),
        });
      }
  }

  /** The changes as they were made, when nothing can be reconciled any more (the update failed). */
  changes(): AuditedChange[] {
    return [...this.writes.values()].flatMap((w) => (w.change ? [{ change: w.change, revision: w.revision }] : []));
  }

  entries(): Iterable<Written> {
    return this.writes.values();
  }

  /** Keys an attempt meant to delete and did not, other than those it wrote. */
  unreachedDeletes(): IdentityKey[] {
    return [...this.unreached].filter(([id]) => !this.writes.has(id)).map(([, k]) => k);
  }
}

export interface ReconcileDeps {
  readonly store: BindingStore;
  readonly weakKeyTtlMs: number;
  readonly operationId: () => string;
  readonly log: Logger;
}

/**
 * After the deciding attempt: each binding an earlier attempt wrote either stands in the final
 * state (bound to the device and in its key index: its change is audited, unless the final decision
 * audits that key itself), or is undone while it still holds one of this update's writes (restored
 * to what it held before, or deleted), and both the change and its undoing are audited. A binding
 * another writer has changed since is theirs: only our earlier change is audited.
 */
export async function reconcile(
  earlier: EarlierWrites,
  d: Settled,
  ownOperations: ReadonlySet<string>,
  deps: ReconcileDeps,
): Promise<AuditedChange[]> {
  const out: AuditedChange[] = [];
  const decidedKeys = new Set(d.changes.map((c) => keyId(c.key)));
  for (const w of earlier.entries()) {
    const id = keyId(w.key);
    const current = await deps.store.get(w.key);
    const owner = current?.record.canonicalDeviceId;
    const stands = owner === d.canonicalDeviceId && (w.key.kind === "device-id" || listed(d, w.key));
    if (stands || !current || !ownOperations.has(current.record.operationId)) {
      if (w.change && !(stands && decidedKeys.has(id))) out.push({ change: w.change, revision: w.revision });
      continue;
    }
    try {
      const prior = w.prior;
      const revision = prior
        ? await deps.store.apply(
            {
              op: "update",
              key: w.key,
              record: { ...prior.record, operationId: deps.operationId() },
              revision: current.revision,
            },
            deps.weakKeyTtlMs,
          )
        : await deps.store.apply({ op: "delete", key: w.key, revision: current.revision }, deps.weakKeyTtlMs);
      if (w.change) out.push({ change: w.change, revision: w.revision });
      const restoredTo = prior ? prior.record.canonicalDeviceId : null;
      if (restoredTo !== owner)
        out.push({
          change: {
            key: w.key,
            fromDeviceId: owner ?? null,
            toDeviceId: restoredTo,
            reason: "moved",
          },
          revision: prior ? revision : current.revision,
        });
    } catch (e) {
      if (!(e instanceof RevisionConflict)) throw e;
      // Someone wrote the key meanwhile: it is theirs now; our change still happened.
      deps.log.debug({ kind: w.key.kind }, "earlier write changed by another writer before it could be undone");
      if (w.change) out.push({ change: w.change, revision: w.revision });
    }
  }
  // A delete an earlier attempt did not reach (it lost the CAS on the device record first) was of a
  // key leaving the device. The deciding attempt read the record that attempt's rival committed,
  // which may no longer list the key: the decision cannot know it, so it is done here, while the key
  // still names the device and its index does not list it.
  for (const key of earlier.unreachedDeletes()) {
    if (decidedKeys.has(keyId(key)) || listed(d, key) || key.kind === "device-id") continue;
    // Another instance may rewrite the key meanwhile (it refreshes what it believes is its device's):
    // re-read and try again, a few times.
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await deps.store.get(key);
      if (!current || current.record.canonicalDeviceId !== d.canonicalDeviceId) break;
      try {
        await deps.store.apply({ op: "delete", key, revision: current.revision }, deps.weakKeyTtlMs);
        out.push({
          change: { key, fromDeviceId: d.canonicalDeviceId, toDeviceId: null, reason: "moved" },
          revision: current.revision,
        });
        break;
      } catch (e) {
        if (!(e instanceof RevisionConflict)) throw e;
      }
    }
  }
  return out;
}

/**
 * An update that gave up (its CAS retries exhausted) decided nothing: what its attempts bound stands
 * only where the device's record, as the store holds it now, lists it; the rest is undone as
 * `reconcile` undoes it. Without this, a key bound by the first attempt stayed on the device outside
 * its index (the etcd cluster's three-instance test found it).
 */
export async function abandon(
  earlier: EarlierWrites,
  deviceId: string,
  ownOperations: ReadonlySet<string>,
  deps: ReconcileDeps,
): Promise<AuditedChange[]> {
  const own = await deps.store.get({ kind: "device-id", value: deviceId });
  const keys = own && own.record.canonicalDeviceId === deviceId ? own.record.keys : [];
  return reconcile(earlier, { canonicalDeviceId: deviceId, record: { keys }, changes: [] }, ownOperations, deps);
}

/** What `reconcile` needs of the deciding attempt: the device, its key index, the changes it audits. */
type Settled = Pick<Resolved, "canonicalDeviceId" | "changes"> & { readonly record: Pick<Resolved["record"], "keys"> };

function listed(d: Settled, key: IdentityKey): boolean {
  return d.record.keys.some((k) => k.kind === key.kind && k.value === key.value);
}
