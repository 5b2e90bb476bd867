import type { Revision } from "../../domain/binding.js";
import { RevisionConflict } from "../../domain/errors.js";
import { resumePointFromLog } from "./change-log.js";
import type { IdentityKv, KvChange, KvEntry, KvScan, ResumePoint, WatchHandle } from "../../ports/identity-kv.js";
import { checkPageSize } from "./scan-page.js";

/**
 * An in-process KV with the full CAS and watch contract. For tests and single-process experiments;
 * nothing survives a restart.
 */
export class MemoryKv implements IdentityKv {
  readonly backend = "memory";
  /** Changes kept for watches to resume from; older ones are dropped half at a time. */
  constructor(private readonly retainChanges = 100_000) {}
  private readonly entries = new Map<string, KvEntry>();
  private readonly log: KvChange[] = [];
  private revision = 0;
  private readonly watchers = new Set<{ prefix: string; onChange: (c: KvChange) => void }>();

  async get(key: string): Promise<KvEntry | null> {
    return this.entries.get(key) ?? null;
  }

  async getMany(keys: readonly string[]): Promise<(KvEntry | null)[]> {
    return keys.map((k) => this.entries.get(k) ?? null);
  }

  async create(key: string, value: Uint8Array): Promise<Revision> {
    if (this.entries.has(key)) throw new RevisionConflict(key);
    return this.write(key, value);
  }

  async update(key: string, value: Uint8Array, revision: Revision): Promise<Revision> {
    if (this.entries.get(key)?.revision !== revision) throw new RevisionConflict(key);
    return this.write(key, value);
  }

  async delete(key: string, revision: Revision): Promise<void> {
    if (this.entries.get(key)?.revision !== revision) throw new RevisionConflict(key);
    this.entries.delete(key);
    this.emit({ key, value: null, revision: ++this.revision });
  }

  async list(prefix: string): Promise<{ entries: KvEntry[]; revision: Revision }> {
    const entries = [...this.entries.values()].filter((e) => e.key.startsWith(prefix));
    return { entries, revision: this.revision };
  }

  async scan(prefix: string, pageSize: number): Promise<KvScan> {
    checkPageSize(pageSize);
    const revision = this.revision;
    const keys = [...this.entries.keys()].filter((k) => k.startsWith(prefix)).sort();
    const entries = this.entries;
    async function* pages(): AsyncGenerator<readonly KvEntry[]> {
      for (let i = 0; i < keys.length; i += pageSize) {
        const page = keys.slice(i, i + pageSize).flatMap((k) => entries.get(k) ?? []);
        if (page.length > 0) yield page;
      }
    }
    return { revision, pages: pages() };
  }

  async resumePoint(afterRevision: Revision): Promise<ResumePoint> {
    return resumePointFromLog(afterRevision, this.revision, this.log[0]?.revision ?? null);
  }

  async watch(
    prefix: string,
    afterRevision: Revision,
    onChange: (c: KvChange) => void,
    onError: (e: Error) => void,
  ): Promise<WatchHandle> {
    const oldest = this.log[0]?.revision ?? this.revision + 1;
    if (afterRevision < oldest - 1) {
      queueMicrotask(() => onError(new Error(`revision ${afterRevision} is compacted (oldest kept ${oldest})`)));
      return { stop: async () => {} };
    }
    for (const c of this.log) if (c.revision > afterRevision && c.key.startsWith(prefix)) onChange(c);
    const w = { prefix, onChange };
    this.watchers.add(w);
    return { stop: async () => void this.watchers.delete(w) };
  }

  /** Forgets all but the newest `keep` changes, as a long-running store would (watches resuming before them fail). */
  trimChanges(keep: number): void {
    if (this.log.length > keep) this.log.splice(0, this.log.length - keep);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.watchers.clear();
  }

  private write(key: string, value: Uint8Array): Revision {
    const revision = ++this.revision;
    this.entries.set(key, { key, value: value.slice(), revision });
    this.emit({ key, value: value.slice(), revision });
    return revision;
  }

  private emit(c: KvChange): void {
    this.log.push(c);
    if (this.log.length > this.retainChanges) this.log.splice(0, Math.ceil(this.retainChanges / 2));
    for (const w of this.watchers) if (c.key.startsWith(w.prefix)) w.onChange(c);
  }
}
