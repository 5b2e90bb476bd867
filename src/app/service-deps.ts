import { BatchTooLarge } from "../domain/errors.js";
import type { ResolutionPolicy } from "../domain/resolution.js";
import type { Clock, DeviceStore, Metrics } from "../ports/index.js";
import type { BindingStore } from "./bindings/binding-store.js";
import type { Logger } from "./logger.js";

/** What the publish and lookup services both run on. */
export interface ServiceDeps {
  /** The binding store resolution and lookups run on (the KV, or the relational binding table). */
  readonly store: BindingStore;
  readonly devices: DeviceStore;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly policy: ResolutionPolicy;
  /** The most items one call may carry (IDMAP_MAX_BATCH); unlimited when absent (the CLI's own batches). */
  readonly maxBatch?: number;
}

/** The batch limit lives in the services, so every front-end refuses the same batches the same way. */
export function checkBatchSize(field: string, size: number, max: number | undefined): void {
  if (max !== undefined && size > max) throw new BatchTooLarge(field, size, max);
}
