import { RevisionConflict } from "../../domain/errors.js";
import { isLive } from "../../domain/binding.js";
import { kindPrefix, parseKeyPath } from "../../domain/key-path.js";
import type { IdentityKey } from "../../domain/identity-key.js";
import type { AuditEntry, DeviceStore, Metrics } from "../../ports/index.js";
import { decodeBinding, type BindingStore } from "./binding-store.js";
import type { Logger } from "../logger.js";

export interface CompactionSummary {
  readonly scanned: number;
  readonly expired: number;
  readonly removed: number;
  /** Expired bindings rewritten by someone else meanwhile: left alone, as they should be. */
  readonly raced: number;
}

/**
 * Removes bindings whose expiry has passed (weak keys, and the records of devices known only by
 * address). Each delete is conditional on the revision read, so a binding refreshed meanwhile stays.
 * Expired bindings already read as absent; this only reclaims the space.
 */
export async function compact(
  store: BindingStore,
  devices: DeviceStore,
  nowMs: number,
  metrics: Metrics,
  log: Logger,
): Promise<CompactionSummary> {
  let scanned = 0;
  let expired = 0;
  let removed = 0;
  let raced = 0;
  const audit: AuditEntry[] = [];
  for (const kind of ["partition-ip", "ip", "device-id"] as const) {
    const { entries } = await store.kv.list(kindPrefix(store.namespace, kind));
    for (const e of entries) {
      scanned++;
      const b = decodeBinding(e.value, e.revision);
      const owner = b.record.canonicalDeviceId;
      if (isLive(b, nowMs)) continue;
      expired++;
      let key: IdentityKey;
      try {
        key = parseKeyPath(e.key).key;
      } catch {
        metrics.bindingExpired(kind, false);
        continue;
      }
      try {
        await store.apply({ op: "delete", key, revision: e.revision }, 0);
        removed++;
        metrics.bindingChange("expired", kind);
        metrics.bindingExpired(kind, true);
        log.info(
          {
            audit: true,
            actor: "compaction",
            kind,
            key: key.value,
            from: owner || null,
            to: null,
            revision: e.revision,
            reason: "expired",
          },
          "binding change",
        );
        audit.push({
          atMs: nowMs,
          actor: "compaction",
          key,
          fromDeviceId: owner || null,
          toDeviceId: null,
          revision: e.revision,
          reason: "expired",
        });
      } catch (err) {
        if (!(err instanceof RevisionConflict)) throw err;
        raced++;
        metrics.bindingExpired(kind, false);
      }
    }
  }
  await devices.appendAudit(audit);
  const summary = { scanned, expired, removed, raced };
  log.info(summary, "compaction finished");
  return summary;
}
