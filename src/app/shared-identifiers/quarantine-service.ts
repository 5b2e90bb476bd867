import { isLive, type BindingChange } from "../../domain/binding.js";
import { InvalidArgument, NotFound, RevisionConflict } from "../../domain/errors.js";
import type { IdentityKey } from "../../domain/identity-key.js";
import { normalizeMac } from "../../domain/mac.js";
import { candidatesOf, isQuarantined, releaseQuarantine } from "../../domain/shared-identifier.js";
import type { Clock, DeviceStore, Metrics } from "../../ports/index.js";
import type { QuarantinedIdentifier, QuarantineUseCase } from "../../ports/identity-service.js";
import type { BindingStore } from "../bindings/binding-store.js";
import type { Logger } from "../logger.js";

export type { QuarantinedIdentifier };

export interface QuarantineDeps {
  readonly store: BindingStore;
  readonly devices: DeviceStore;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly weakKeyTtlMs: number;
}

/**
 * Quarantined (shared) identifiers, as the map holds them (docs/architecture.md): listed from the store
 * so every instance gives the same answer, and released by an operator with a conditional delete.
 */
export class QuarantineService implements QuarantineUseCase {
  constructor(private readonly deps: QuarantineDeps) {}

  async list(): Promise<QuarantinedIdentifier[]> {
    const now = this.deps.clock.nowMs();
    const macs = await this.deps.store.listKind("mac");
    return macs
      .filter(({ binding }) => isLive(binding, now) && isQuarantined(binding.record))
      .map(({ key, binding }) => ({
        key,
        quarantinedSinceMs: binding.record.quarantinedSinceMs!,
        candidates: candidatesOf(binding.record),
      }))
      .sort((a, b) => (a.key.value < b.key.value ? -1 : a.key.value > b.key.value ? 1 : 0));
  }

  /** Releases one quarantined identifier; NotFound when it is not quarantined. Audited as `released`. */
  async release(kind: string, value: string, actor: string): Promise<void> {
    if (kind !== "mac") throw new InvalidArgument("kind", "only MACs are quarantined");
    const mac = normalizeMac(value);
    if (!mac.ok) throw new InvalidArgument("value", mac.reason);
    const key: IdentityKey = { kind: "mac", value: mac.mac };
    const c = await this.releaseAtRevision(key);
    this.deps.metrics.bindingChange(c.reason, c.key.kind);
    this.deps.log.info(
      { audit: true, actor, kind: key.kind, key: key.value, from: c.fromDeviceId, to: null, reason: c.reason },
      "binding change",
    );
    await this.deps.devices.appendAudit([
      {
        atMs: this.deps.clock.nowMs(),
        actor,
        key,
        fromDeviceId: c.fromDeviceId,
        toDeviceId: null,
        revision: null,
        reason: c.reason,
      },
    ]);
  }

  /** Read, decide, delete at the read revision; a writer that changed the binding meanwhile means read again. */
  private async releaseAtRevision(key: IdentityKey): Promise<BindingChange> {
    for (let attempt = 1; ; attempt++) {
      const binding = await this.deps.store.get(key);
      const release = binding && isLive(binding, this.deps.clock.nowMs()) ? releaseQuarantine(key, binding) : undefined;
      if (!release) throw new NotFound(`mac ${key.value} is not quarantined`);
      try {
        await this.deps.store.apply(release.write, this.deps.weakKeyTtlMs);
        return release.change;
      } catch (e) {
        if (!(e instanceof RevisionConflict) || attempt >= 5) throw e;
      }
    }
  }
}
