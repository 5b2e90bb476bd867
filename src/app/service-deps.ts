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
}
