import type { Revision } from "../../domain/binding.js";
import type { IdentityKey } from "../../domain/identity-key.js";
import type { CanonicalRecord } from "../../domain/record.js";
import { candidatesOf, isQuarantined } from "../../domain/shared-identifier.js";
import type { ChangeEvent } from "../../ports/changes.js";

/** What a webhook receives (the JSON body); `revision` is the idempotency key. */
export type WebhookEvent =
  | {
      readonly type: "merge";
      readonly revision: Revision;
      /** The retired id now redirects to the survivor: the tombstone. */
      readonly tombstone: { readonly device_id: string; readonly merged_into: string };
      /** The retired device was provisional (addresses only) and was absorbed, not merged on a strong id. */
      readonly absorbed: boolean;
    }
  | {
      readonly type: "take_over";
      readonly revision: Revision;
      /** A provisional device that an asserting update turned out to be: it keeps its id, gains identifiers. */
      readonly device_id: string;
      readonly attributes: Readonly<Record<string, string>>;
    }
  | {
      readonly type: "quarantine";
      readonly revision: Revision;
      readonly key: { readonly kind: string; readonly value: string };
      readonly candidates: readonly string[];
    };

/**
 * Turns binding changes into the events webhooks carry. A merge and a quarantine can be read from
 * the new record alone; a take-over is a provisional device becoming an asserted one, so the
 * classifier remembers which devices are provisional (seeded from a snapshot, then kept current)
 * and which ids already redirect and which MACs are already quarantined, as the stream showed them
 * (so a later rewrite of the same binding is not a second event).
 */
export class WebhookClassifier {
  private readonly provisional = new Set<string>();
  private readonly redirects = new Map<string, string>();
  private readonly quarantined = new Set<string>();

  /**
   * Learns from the snapshot the dispatcher starts with which devices are provisional, so a later
   * take-over is seen. Only that: redirects and quarantines are learned from the stream itself, so
   * a replay after a restart (from the saved cursor, older than the snapshot) posts them again
   * rather than taking them for old news. A take-over that happened while no dispatcher ran, of a
   * device the snapshot already shows asserted, is not seen (docs/operations.md, Webhooks).
   */
  seed(key: IdentityKey, record: CanonicalRecord): void {
    if (key.kind === "device-id" && record.canonicalDeviceId === key.value && isProvisional(record))
      this.provisional.add(key.value);
  }

  classify(change: ChangeEvent): WebhookEvent | null {
    const { key, record, revision } = change;
    if (key.kind === "device-id") {
      if (!record) {
        this.provisional.delete(key.value);
        this.redirects.delete(key.value);
        return null;
      }
      const id = key.value;
      if (record.canonicalDeviceId !== id) {
        const wasProvisional = this.provisional.has(id);
        const already = this.redirects.get(id) === record.canonicalDeviceId;
        this.observe(key, record);
        if (already) return null;
        return {
          type: "merge",
          revision,
          tombstone: { device_id: id, merged_into: record.canonicalDeviceId },
          absorbed: wasProvisional,
        };
      }
      const tookOver = this.provisional.has(id) && !isProvisional(record);
      this.observe(key, record);
      return tookOver ? { type: "take_over", revision, device_id: id, attributes: record.attributes } : null;
    }
    if (key.kind === "mac") {
      const k = `${key.kind}/${key.value}`;
      const was = this.quarantined.has(k);
      if (record) this.observe(key, record);
      else this.quarantined.delete(k);
      if (record && isQuarantined(record) && !was)
        return {
          type: "quarantine",
          revision,
          key: { kind: key.kind, value: key.value },
          candidates: candidatesOf(record),
        };
    }
    return null;
  }

  private observe(key: IdentityKey, record: CanonicalRecord): void {
    if (key.kind === "device-id") {
      if (record.canonicalDeviceId !== key.value) {
        this.redirects.set(key.value, record.canonicalDeviceId);
        this.provisional.delete(key.value);
      } else {
        this.redirects.delete(key.value);
        if (isProvisional(record)) this.provisional.add(key.value);
        else this.provisional.delete(key.value);
      }
    } else if (key.kind === "mac") {
      const k = `${key.kind}/${key.value}`;
      if (isQuarantined(record)) this.quarantined.add(k);
      else this.quarantined.delete(k);
    }
  }
}

function isProvisional(r: CanonicalRecord): boolean {
  return (r.provisionalSinceMs ?? 0) > 0;
}
