import { isLive, type Binding } from "../../src/domain/binding.js";
import { normalizeUpdate, type DeviceUpdate } from "../../src/domain/device-update.js";
import { keyId, type IdentityKey } from "../../src/domain/identity-key.js";
import type { IdentityKind } from "../../src/domain/identity-kind.js";
import { decide, DEFAULT_POLICY, type Resolved, type ResolutionPolicy } from "../../src/domain/resolution.js";

/**
 * A map held in memory for domain tests: publishes through decide() and applies its writes with the
 * same revision checks a KV makes, so a wrong revision in a decision fails the test.
 */
export class World {
  readonly bindings = new Map<string, Binding>();
  private revision = 0;
  writes = 0;
  private op = 0;

  constructor(readonly policy: ResolutionPolicy = DEFAULT_POLICY) {}

  /** What decide() answers for the update against the current bindings, nothing applied. */
  decision(u: DeviceUpdate, atMs: number) {
    const n = normalizeUpdate(u, { nowMs: atMs });
    return decide(
      { update: n, policy: this.policy, operationId: `op-${++this.op}` },
      (k) => this.bindings.get(keyId(k)) ?? null,
    );
  }

  publish(u: DeviceUpdate, atMs: number): Resolved {
    const d = this.decision(u, atMs);
    if (d.status !== "decided") throw new Error(`expected a decision, got ${d.status}`);
    for (const step of d.steps) {
      for (const w of step) {
        const id = keyId(w.key);
        const cur = this.bindings.get(id);
        if (w.op === "create" ? cur !== undefined : cur?.revision !== w.revision)
          throw new Error(`stale revision in decision for ${id}`);
        this.writes++;
        if (w.op === "delete") this.bindings.delete(id);
        else this.bindings.set(id, { record: w.record, revision: ++this.revision });
      }
    }
    return d;
  }

  /** The device a key is bound to now, or undefined (absent or expired at `atMs`). */
  owner(kind: IdentityKind, value: string, atMs = 0): string | undefined {
    const b = this.bindings.get(keyId({ kind, value } as IdentityKey));
    return atMs === 0 ? b?.record.canonicalDeviceId : isLive(b, atMs) ? b.record.canonicalDeviceId : undefined;
  }
}

export const MIN = 60_000;
export const HOUR = 60 * MIN;
