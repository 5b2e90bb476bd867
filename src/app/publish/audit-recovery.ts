import { isLive } from "../../domain/binding.js";
import type { AuditEntry, DeviceStore } from "../../ports/device-store.js";
import type { Logger } from "../../ports/logger.js";
import type { BindingStore } from "../bindings/binding-store.js";
import { logBindingChange } from "../bindings/audit-line.js";

export interface AuditRecoveryDeps {
  readonly store: BindingStore;
  readonly devices: DeviceStore;
  readonly log: Logger;
  readonly nowMs: number;
  /** Intents younger than this may belong to a publish still running (here or on another instance). */
  readonly minAgeMs: number;
}

export interface AuditRecoverySummary {
  readonly intents: number;
  readonly audited: number;
}

/**
 * Audits what publishes journaled and never settled (ADR 0017): the process died, or the database failed,
 * after their KV writes and before their audit rows. The map says what happened: a change to a device is
 * audited when the key names that device now, a removal when the key no longer names the device it left.
 * A change a later, audited one undid needs no row: the trail of the final owner is what a reader follows.
 */
export async function recoverAudit(deps: AuditRecoveryDeps): Promise<AuditRecoverySummary> {
  let intents = 0;
  let audited = 0;
  for (;;) {
    const page = await deps.devices.unsettledIntents(deps.nowMs - deps.minAgeMs, 200);
    if (page.length === 0) break;
    const keys = page.flatMap((t) => t.changes.map((c) => c.key));
    const now = await deps.store.getMany(keys);
    const entries: AuditEntry[] = [];
    let i = 0;
    for (const t of page)
      for (const c of t.changes) {
        const b = now[i++];
        const live = isLive(b, deps.nowMs) ? b : null;
        const holds =
          c.toDeviceId !== null
            ? live?.record.canonicalDeviceId === c.toDeviceId
            : live?.record.canonicalDeviceId !== c.fromDeviceId;
        if (!holds) continue;
        const revision = c.toDeviceId !== null ? (live?.revision ?? null) : null;
        entries.push({
          atMs: t.atMs,
          actor: t.actor,
          key: c.key,
          fromDeviceId: c.fromDeviceId,
          toDeviceId: c.toDeviceId,
          revision,
          reason: c.reason,
        });
        logBindingChange(deps.log, t.actor, c, revision, { recovered: true });
      }
    await deps.devices.appendAudit(
      entries,
      page.map((t) => t.operationId),
    );
    intents += page.length;
    audited += entries.length;
  }
  if (intents > 0) deps.log.warn({ intents, audited }, "audit recovered from unsettled publish intents");
  return { intents, audited };
}
