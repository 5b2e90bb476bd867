import type { NormalizedUpdate } from "../../domain/device-update.js";
import type { Resolved, ResolutionPolicy } from "../../domain/resolution.js";
import type { IdentityKv, Metrics } from "../../ports/index.js";
import { BindingStore, startCachedStore } from "../bindings/binding-store.js";
import type { Logger } from "../logger.js";
import type { ShadowComparator } from "./publish-service.js";

/** Why a shadow decision differs from the primary one (the `reason` label; a bounded set). */
export type DivergenceReason =
  /** Both maps know the device, under different ids. */
  | "canonical_id"
  /** The primary map knows the device; the KV map does not yet (it would create one). */
  | "missing_in_kv"
  /** The KV map knows a device the primary one would create. */
  | "missing_in_primary"
  /** Same device; one decision retires the update's id (a tombstone), the other does not, or elsewhere. */
  | "tombstone"
  /** The shadow decision could not be made (KV unavailable): counted, never fails the publish. */
  | "error";

/**
 * Shadow mode (CANONICAL_IDENTITY_MAP_ENABLED=shadow): every published update is decided a second
 * time, by the same decide(), against the KV map, which it only reads; where the two decisions differ
 * (canonical id, tombstone) it counts `identitymap_shadow_divergence_total{reason}` and logs both.
 * The KV map is not written in shadow mode, so it stays as the backfill left it: devices first seen
 * after the backfill show up as `missing_in_kv` until the next backfill.
 */
export class KvShadow implements ShadowComparator {
  private seq = 0;

  constructor(
    private readonly store: BindingStore,
    private readonly policy: ResolutionPolicy,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  async compare(update: NormalizedUpdate, primary: Resolved | null): Promise<void> {
    let shadow: Resolved | null;
    try {
      shadow = await this.decide(update);
    } catch (e) {
      this.metrics.shadowDivergence("error");
      this.log.warn(
        { shadow: true, device_id: update.deviceId, err: e instanceof Error ? e.message : String(e) },
        "shadow decision failed",
      );
      return;
    }
    const reason = divergence(primary, shadow);
    if (!reason) return;
    this.metrics.shadowDivergence(reason);
    this.log.info(
      {
        shadow: true,
        reason,
        device_id: update.deviceId,
        primary: primary && {
          canonical_device_id: primary.canonicalDeviceId,
          outcome: primary.outcome,
          matched_by: primary.matchedBy,
          tombstone: primary.tombstone ?? null,
        },
        kv: shadow && {
          canonical_device_id: shadow.canonicalDeviceId,
          outcome: shadow.outcome,
          matched_by: shadow.matchedBy,
          tombstone: shadow.tombstone ?? null,
        },
      },
      "shadow decision differs",
    );
  }

  async stop(): Promise<void> {
    await this.store.stop();
  }

  /** decide() on the KV map, loading what it asks for; nothing is applied. */
  private decide(u: NormalizedUpdate): Promise<Resolved | null> {
    const operationId = `shadow-${++this.seq}`;
    return this.store.decideLoaded({ update: u, policy: this.policy, operationId }, new Map(), false);
  }
}

export function divergence(primary: Resolved | null, shadow: Resolved | null): DivergenceReason | undefined {
  if (!primary && !shadow) return undefined;
  if (!primary || !shadow) return "canonical_id";
  if (primary.canonicalDeviceId !== shadow.canonicalDeviceId) {
    if (shadow.outcome === "created" && primary.outcome !== "created") return "missing_in_kv";
    if (primary.outcome === "created" && shadow.outcome !== "created") return "missing_in_primary";
    return "canonical_id";
  }
  const a = primary.tombstone;
  const b = shadow.tombstone;
  if (!!a !== !!b || (a && b && (a.device_id !== b.device_id || a.merged_into !== b.merged_into))) return "tombstone";
  return undefined;
}

/** The KV map as shadow mode reads it: its own watch-coherent cache, so comparing costs no round trip. */
export async function startKvShadow(
  kv: IdentityKv,
  namespace: string,
  policy: ResolutionPolicy,
  metrics: Metrics,
  log: Logger,
): Promise<KvShadow> {
  const store = await startCachedStore(kv, namespace, log, (cache) => new BindingStore(kv, namespace, cache, metrics));
  return new KvShadow(store, policy, metrics, log);
}
