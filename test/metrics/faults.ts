import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import type { Revision } from "../../src/domain/binding.js";
import { KvUnavailable, RevisionConflict, WriteOutcomeUnknown } from "../../src/domain/errors.js";
import type { WriteOptions } from "../../src/ports/identity-kv.js";

export type Fault = "conflict" | "lost_reply";

/**
 * A MemoryKv that misbehaves on request: the next writes fail with a conflict (nothing written) or
 * lose their reply (written, then WriteOutcomeUnknown), and `down` makes every call but the watch fail.
 */
export class FaultyKv extends MemoryKv {
  readonly faults: Fault[] = [];
  /** Conflict on every create/update while true (a CAS storm that never ends). */
  alwaysConflict = false;
  down = false;

  override async get(key: string) {
    this.check();
    return super.get(key);
  }
  override async getMany(keys: readonly string[]) {
    this.check();
    return super.getMany(keys);
  }
  override async create(key: string, value: Uint8Array, _options?: WriteOptions): Promise<Revision> {
    this.check();
    return this.inject(key, () => super.create(key, value));
  }
  override async update(
    key: string,
    value: Uint8Array,
    revision: Revision,
    _options?: WriteOptions,
  ): Promise<Revision> {
    this.check();
    return this.inject(key, () => super.update(key, value, revision));
  }
  override async ping() {
    this.check();
  }

  private check(): void {
    if (this.down) throw new KvUnavailable("memory KV is down (test)");
  }

  private async inject(key: string, write: () => Promise<Revision>): Promise<Revision> {
    if (this.alwaysConflict) throw new RevisionConflict(key);
    const f = this.faults.shift();
    if (f === "conflict") throw new RevisionConflict(key);
    const r = await write();
    if (f === "lost_reply") throw new WriteOutcomeUnknown(`reply to the write of ${key} lost (test)`);
    return r;
  }
}
