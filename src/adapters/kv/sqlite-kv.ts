import type Database from "better-sqlite3";
import type { Revision } from "../../domain/binding.js";
import { KvUnavailable, RevisionConflict } from "../../domain/errors.js";
import type {
  IdentityKv,
  KvChange,
  KvEntry,
  KvScan,
  ResumePoint,
  WatchHandle,
  WriteOptions,
} from "../../ports/identity-kv.js";
import { resumePointFromLog } from "./change-log.js";
import { checkPageSize } from "./scan-page.js";
import type { SqlKvTables } from "./sql-kv.js";

interface PendingWrite {
  readonly key: string;
  /** null: delete. */
  readonly value: Buffer | null;
  /** undefined: create (must be absent). */
  readonly revision: Revision | undefined;
  readonly expiresAt: number | null;
  resolve(revision: Revision): void;
  reject(error: Error): void;
}

/**
 * The IdentityKv contract on SQLite, on better-sqlite3's prepared statements: the embedded backend's
 * hot path. Same tables as SqlKv (created through kysely), so the two read each other's data.
 *
 * Group commit: writes issued in the same turn of the event loop are applied in one transaction, each
 * checked against its own expected revision (a conflict fails that write alone), so concurrent
 * updates share one WAL sync. A write is acknowledged only after its transaction committed.
 * Why not kysely here: its per-query compile and async driver cost 4-5x on reads (docs/adr/0007).
 */
export class SqliteKv implements IdentityKv {
  readonly backend: string;
  private readonly st: ReturnType<SqliteKv["prepare"]>;
  private queue: PendingWrite[] = [];
  private flushScheduled = false;
  private readonly pokes = new Set<() => void>();
  private writesSinceTrim = 0;

  constructor(
    private readonly db: Database.Database,
    private readonly tables: SqlKvTables,
    options: { backend?: string; pollMs?: number; retainChanges?: number } = {},
  ) {
    this.backend = options.backend ?? "embedded";
    this.pollMs = options.pollMs ?? 50;
    this.retain = options.retainChanges ?? 200_000;
    this.st = this.prepare();
  }
  private readonly pollMs: number;
  private readonly retain: number;

  private prepare() {
    const e = this.tables.entries;
    const c = this.tables.changes;
    return {
      get: this.db.prepare<[string], Row>(`select key, value, revision from ${e} where key = ?`),
      revisionOf: this.db.prepare<[string], { revision: number }>(`select revision from ${e} where key = ?`),
      logChange: this.db.prepare<[string, Buffer | null], { id: number }>(
        `insert into ${c} (key, value) values (?, ?) returning id`,
      ),
      upsert: this.db.prepare<[string, Buffer, number, number | null]>(
        `insert into ${e} (key, value, revision, expires_at) values (?, ?, ?, ?)
         on conflict (key) do update set value = excluded.value, revision = excluded.revision,
           expires_at = excluded.expires_at`,
      ),
      remove: this.db.prepare<[string]>(`delete from ${e} where key = ?`),
      list: this.db.prepare<[number, string], Row>(
        `select key, value, revision from ${e} where substr(key, 1, ?) = ? order by key`,
      ),
      // Keyset pages on the primary key's index: the first starts at the prefix itself (keys sort by
      // their bytes, so every key under it is at least the prefix), each next one after the last key.
      firstPage: this.db.prepare<[string, number, string, number], Row>(
        `select key, value, revision from ${e} where key >= ? and substr(key, 1, ?) = ? order by key limit ?`,
      ),
      page: this.db.prepare<[string, number, string, number], Row>(
        `select key, value, revision from ${e} where key > ? and substr(key, 1, ?) = ? order by key limit ?`,
      ),
      head: this.db.prepare<[], { r: number | null }>(`select max(id) as r from ${c}`),
      oldest: this.db.prepare<[], { r: number | null }>(`select min(id) as r from ${c}`),
      changes: this.db.prepare<[number, number, string], { id: number; key: string; value: Buffer | null }>(
        `select id, key, value from ${c} where id > ? and substr(key, 1, ?) = ? order by id limit 1000`,
      ),
      trim: this.db.prepare<[number]>(`delete from ${c} where id <= (select max(id) from ${c}) - ?`),
    };
  }

  async get(key: string): Promise<KvEntry | null> {
    const row = this.guard(() => this.st.get.get(key));
    return row ? toEntry(row) : null;
  }

  async getMany(keys: readonly string[]): Promise<(KvEntry | null)[]> {
    return this.guard(() =>
      keys.map((k) => {
        const row = this.st.get.get(k);
        return row ? toEntry(row) : null;
      }),
    );
  }

  create(key: string, value: Uint8Array, options?: WriteOptions): Promise<Revision> {
    return this.enqueue(key, toBuf(value), undefined, options);
  }

  update(key: string, value: Uint8Array, revision: Revision, options?: WriteOptions): Promise<Revision> {
    return this.enqueue(key, toBuf(value), revision, options);
  }

  async delete(key: string, revision: Revision): Promise<void> {
    await this.enqueue(key, null, revision, undefined);
  }

  async list(prefix: string): Promise<{ entries: KvEntry[]; revision: Revision }> {
    return this.guard(() =>
      this.db.transaction(() => {
        const revision = this.st.head.get()?.r ?? 0;
        const entries = this.st.list.all(prefix.length, prefix).map(toEntry);
        return { entries, revision };
      })(),
    );
  }

  /**
   * Pages in key order, each one an indexed read of at most `pageSize` rows from the prefix or after
   * the last key of the previous page, read when the caller asks for it (never the namespace at once).
   */
  async scan(prefix: string, pageSize: number): Promise<KvScan> {
    checkPageSize(pageSize);
    const revision = this.guard(() => this.st.head.get()?.r ?? 0);
    const self = this;
    async function* pages(): AsyncGenerator<readonly KvEntry[]> {
      let after: string | undefined;
      for (;;) {
        const rows = self.guard(() =>
          after === undefined
            ? self.st.firstPage.all(prefix, prefix.length, prefix, pageSize)
            : self.st.page.all(after, prefix.length, prefix, pageSize),
        );
        if (rows.length > 0) yield rows.map(toEntry);
        if (rows.length < pageSize) return;
        after = rows[rows.length - 1]!.key;
      }
    }
    return { revision, pages: pages() };
  }

  async resumePoint(afterRevision: Revision): Promise<ResumePoint> {
    return this.guard(() =>
      this.db.transaction(() =>
        resumePointFromLog(afterRevision, this.st.head.get()?.r ?? 0, this.st.oldest.get()?.r ?? null),
      )(),
    );
  }

  async watch(
    prefix: string,
    afterRevision: Revision,
    onChange: (c: KvChange) => void,
    onError: (e: Error) => void,
  ): Promise<WatchHandle> {
    let cursor = afterRevision;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const poll = (): void => {
      const min = this.st.oldest.get()?.r ?? 0;
      if (min > 0 && cursor < min - 1) throw new Error(`revision ${cursor} is compacted (oldest kept ${min})`);
      for (;;) {
        const rows = this.st.changes.all(cursor, prefix.length, prefix);
        for (const row of rows) {
          if (stopped) return;
          cursor = row.id;
          onChange({ key: row.key, value: row.value ? new Uint8Array(row.value) : null, revision: row.id });
        }
        if (rows.length < 1000) return;
      }
    };
    const tick = () => {
      timer = undefined;
      if (stopped) return;
      try {
        poll();
      } catch (e) {
        stopped = true;
        this.pokes.delete(poke);
        onError(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      timer = setTimeout(tick, this.pollMs);
    };
    // A commit of this process pokes the watch: it reads the change log at the end of the commit's
    // task (not on a timer, which a busy event loop reaches late; measured in docs/benchmarks.md).
    // The writes of one commit come in one poll, and pokes of one task share it.
    let poked = false;
    const poke = () => {
      if (poked) return;
      poked = true;
      queueMicrotask(() => {
        poked = false;
        if (stopped) return;
        if (timer) clearTimeout(timer);
        tick();
      });
    };
    this.pokes.add(poke);
    tick();
    return {
      stop: async () => {
        stopped = true;
        this.pokes.delete(poke);
        if (timer) clearTimeout(timer);
      },
    };
  }

  async ping(): Promise<void> {
    this.guard(() => this.st.head.get());
  }

  async close(): Promise<void> {
    this.pokes.clear();
    if (this.queue.length) this.flush();
  }

  /** Drops change-log rows no watch needs any more (all but the newest `keep`, by default `retainChanges`). */
  trimChanges(keep = this.retain): void {
    // At least one row stays: the newest revision is read from the log.
    this.guard(() => this.st.trim.run(Math.max(1, keep)));
  }

  private enqueue(
    key: string,
    value: Buffer | null,
    revision: Revision | undefined,
    options: WriteOptions | undefined,
  ): Promise<Revision> {
    return new Promise<Revision>((resolve, reject) => {
      this.queue.push({
        key,
        value,
        revision,
        expiresAt: options?.ttlMs ? Date.now() + options.ttlMs : null,
        resolve,
        reject,
      });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Applies every queued write in one transaction; each succeeds or conflicts on its own. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const outcomes: (Revision | RevisionConflict)[] = [];
    try {
      this.db.transaction(() => {
        for (const w of batch) {
          const current = this.st.revisionOf.get(w.key)?.revision;
          const expected = w.revision === undefined ? current === undefined : current === w.revision;
          if (!expected) {
            outcomes.push(new RevisionConflict(w.key));
            continue;
          }
          const revision = this.st.logChange.get(w.key, w.value)!.id;
          if (w.value) this.st.upsert.run(w.key, w.value, revision, w.expiresAt);
          else this.st.remove.run(w.key);
          outcomes.push(revision);
        }
      })();
    } catch (e) {
      const err = new KvUnavailable(`${this.backend}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => {
      const o = outcomes[i]!;
      if (o instanceof RevisionConflict) w.reject(o);
      else w.resolve(o);
    });
    for (const poke of this.pokes) poke();
    this.writesSinceTrim += batch.length;
    if (this.writesSinceTrim >= 10_000) {
      this.writesSinceTrim = 0;
      try {
        this.trimChanges();
      } catch {
        // Trimming is housekeeping; the next flush tries again.
      }
    }
  }

  private guard<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw new KvUnavailable(`${this.backend}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
}

interface Row {
  key: string;
  value: Buffer;
  revision: number;
}

function toEntry(r: Row): KvEntry {
  return { key: r.key, value: new Uint8Array(r.value), revision: r.revision };
}

function toBuf(v: Uint8Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}
