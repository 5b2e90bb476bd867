import { sql, type Kysely, type Transaction } from "kysely";
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

export interface SqlKvTables {
  /** Current values: key, value, revision, expires_at. */
  readonly entries: string;
  /** Append-only change log; its id is the store revision. Watches read it. */
  readonly changes: string;
}

export interface SqlKvOptions {
  readonly backend: string;
  readonly dialect: "sqlite" | "postgres";
  readonly tables: SqlKvTables;
  /** How often a watch polls the change log for writes from other processes. */
  readonly pollMs?: number;
  /** Change-log rows kept for watches to resume from. */
  readonly retainChanges?: number;
}

/**
 * The IdentityKv contract on a SQL table, through kysely: the embedded backend (SQLite, the default)
 * and the relational binding table (SQLite or PostgreSQL).
 *
 * Every write is one transaction that appends to the change log (whose id is the new revision) and
 * applies the change only if the entry is at the expected revision. On PostgreSQL, writers take one
 * transaction-scoped advisory lock so revisions commit in order: a watch that reads "revision > n"
 * can then never miss a revision that commits late. SQLite has a single writer anyway.
 */
export class SqlKv implements IdentityKv {
  readonly backend: string;
  private readonly pollMs: number;
  private readonly retain: number;
  private readonly pokes = new Set<() => void>();
  private writesSinceTrim = 0;

  constructor(
    private readonly db: Kysely<any>,
    private readonly opts: SqlKvOptions,
  ) {
    this.backend = opts.backend;
    this.pollMs = opts.pollMs ?? 100;
    this.retain = opts.retainChanges ?? 200_000;
  }

  private get entries() {
    return sql.table(this.opts.tables.entries);
  }
  private get changes() {
    return sql.table(this.opts.tables.changes);
  }

  async get(key: string): Promise<KvEntry | null> {
    const r = await this.run(() =>
      sql<Row>`select key, value, revision from ${this.entries} where key = ${key}`.execute(this.db),
    );
    const row = r.rows[0];
    return row ? toEntry(row) : null;
  }

  async getMany(keys: readonly string[]): Promise<(KvEntry | null)[]> {
    if (keys.length === 0) return [];
    const found = new Map<string, KvEntry>();
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      const r = await this.run(() =>
        sql<Row>`select key, value, revision from ${this.entries} where key in (${sql.join(chunk)})`.execute(this.db),
      );
      for (const row of r.rows) found.set(row.key, toEntry(row));
    }
    return keys.map((k) => found.get(k) ?? null);
  }

  async create(key: string, value: Uint8Array, options?: WriteOptions): Promise<Revision> {
    return this.write(
      key,
      async (trx, rev) => {
        const r =
          await sql`insert into ${this.entries} (key, value, revision, expires_at) values (${key}, ${toBuf(value)},
            ${rev}, ${expiry(options)})
        on conflict (key) do nothing`.execute(trx);
        return Number(r.numAffectedRows ?? 0n) === 1;
      },
      value,
      undefined,
    );
  }

  async update(key: string, value: Uint8Array, revision: Revision, options?: WriteOptions): Promise<Revision> {
    return this.write(
      key,
      async (trx, rev) => {
        const r = await sql`update ${this.entries} set value = ${toBuf(value)}, revision = ${rev}, expires_at =
            ${expiry(options)}
        where key = ${key} and revision = ${revision}`.execute(trx);
        return Number(r.numAffectedRows ?? 0n) === 1;
      },
      value,
      revision,
    );
  }

  async delete(key: string, revision: Revision): Promise<void> {
    await this.write(
      key,
      async (trx) => {
        const r = await sql`delete from ${this.entries} where key = ${key} and revision = ${revision}`.execute(trx);
        return Number(r.numAffectedRows ?? 0n) === 1;
      },
      null,
      revision,
    );
  }

  async list(prefix: string): Promise<{ entries: KvEntry[]; revision: Revision }> {
    return this.run(() =>
      this.db.transaction().execute(async (trx) => {
        const head = await sql<{ r: number | string | null }>`select max(id) as r from ${this.changes}`.execute(trx);
        const rows = await sql<Row>`select key, value, revision from ${this.entries}
          where substr(key, 1, ${prefix.length}) = ${prefix} order by key`.execute(trx);
        return { entries: rows.rows.map(toEntry), revision: Number(head.rows[0]?.r ?? 0) };
      }),
    );
  }

  /** Pages in key order, each one indexed read after the last key of the previous page. */
  async scan(prefix: string, pageSize: number): Promise<KvScan> {
    checkPageSize(pageSize);
    const head = await this.run(() =>
      sql<{ r: number | string | null }>`select max(id) as r from ${this.changes}`.execute(this.db),
    );
    const self = this;
    async function* pages(): AsyncGenerator<readonly KvEntry[]> {
      let after = "";
      for (;;) {
        const r = await self.run(() =>
          sql<Row>`select key, value, revision from ${self.entries}
            where substr(key, 1, ${prefix.length}) = ${prefix} and key > ${after}
            order by key limit ${pageSize}`.execute(self.db),
        );
        if (r.rows.length > 0) yield r.rows.map(toEntry);
        if (r.rows.length < pageSize) return;
        after = r.rows[r.rows.length - 1]!.key;
      }
    }
    return { revision: Number(head.rows[0]?.r ?? 0), pages: pages() };
  }

  async resumePoint(afterRevision: Revision): Promise<ResumePoint> {
    const r = await this.run(() =>
      sql<{ head: number | string | null; oldest: number | string | null }>`select max(id) as head, min(id) as oldest
        from ${this.changes}`.execute(this.db),
    );
    const row = r.rows[0];
    const oldest = row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest);
    return resumePointFromLog(afterRevision, Number(row?.head ?? 0), oldest);
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
    let running: Promise<void> | undefined;
    const poll = async (): Promise<void> => {
      const oldest = await sql<{ r: number | string | null }>`select min(id) as r from ${this.changes}`.execute(
        this.db,
      );
      const min = Number(oldest.rows[0]?.r ?? 0);
      if (min > 0 && cursor < min - 1) throw new Error(`revision ${cursor} is compacted (oldest kept ${min})`);
      for (;;) {
        const r = await sql<{
          id: number | string;
          key: string;
          value: Uint8Array | null;
        }>`select id, key, value from ${this.changes}
          where id > ${cursor} and substr(key, 1, ${prefix.length}) = ${prefix} order by id limit 1000`.execute(
          this.db,
        );
        for (const row of r.rows) {
          if (stopped) return;
          cursor = Number(row.id);
          onChange({ key: row.key, value: row.value ? new Uint8Array(row.value) : null, revision: cursor });
        }
        if (r.rows.length < 1000) return;
      }
    };
    const tick = () => {
      if (stopped || running) return;
      running = poll()
        .catch((e: unknown) => {
          stopped = true;
          onError(e instanceof Error ? e : new Error(String(e)));
        })
        .finally(() => {
          running = undefined;
          if (!stopped) timer = setTimeout(tick, this.pollMs);
        });
    };
    const poke = () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      tick();
    };
    this.pokes.add(poke);
    // The first poll runs before returning so changes made after watch() resolves cannot be missed;
    // a start revision that is already compacted is reported through onError, like any later failure.
    try {
      await poll();
    } catch (e) {
      stopped = true;
      this.pokes.delete(poke);
      const err = e instanceof Error ? e : new Error(String(e));
      queueMicrotask(() => onError(err));
      return { stop: async () => {} };
    }
    timer = setTimeout(tick, this.pollMs);
    return {
      stop: async () => {
        stopped = true;
        this.pokes.delete(poke);
        if (timer) clearTimeout(timer);
        await running;
      },
    };
  }

  async ping(): Promise<void> {
    await this.run(() => sql`select 1`.execute(this.db));
  }

  async close(): Promise<void> {
    this.pokes.clear();
  }

  /** Drops change-log rows no watch needs any more (all but the newest `retainChanges`). */
  async trimChanges(): Promise<void> {
    await this.run(() =>
      sql`delete from ${this.changes} where id <= (select max(id) from ${this.changes}) - ${this.retain}`.execute(
        this.db,
      ),
    );
  }

  private async write(
    key: string,
    apply: (trx: Transaction<any>, revision: Revision) => Promise<boolean>,
    value: Uint8Array | null,
    expected: Revision | undefined,
  ): Promise<Revision> {
    const precheck = async (trx: Transaction<any>): Promise<boolean> => {
      const r = await sql<{
        revision: number | string;
      }>`select revision from ${this.entries} where key = ${key} for update`.execute(trx);
      const current = r.rows[0] ? Number(r.rows[0].revision) : undefined;
      return expected === undefined ? current === undefined : current === expected;
    };
    const revision = await this.run(() =>
      this.db.transaction().execute(async (trx) => {
        if (this.opts.dialect === "postgres") {
          // Fail a write that will conflict before taking the global lock, so losers of a CAS race do
          // not queue behind it: lock the row (if any) and compare its revision first.
          if (!(await precheck(trx))) throw new RevisionConflict(key);
          await sql`select pg_advisory_xact_lock(hashtext(${this.opts.tables.changes}))`.execute(trx);
        }
        const ins = await sql<{
          id: number | string;
        }>`insert into ${this.changes} (key, value) values (${key}, ${value ? toBuf(value) : null}) returning
          id`.execute(trx);
        const rev = Number(ins.rows[0]!.id);
        if (!(await apply(trx, rev))) throw new RevisionConflict(key);
        return rev;
      }),
    );
    for (const poke of this.pokes) poke();
    if (++this.writesSinceTrim >= 10_000) {
      this.writesSinceTrim = 0;
      void this.trimChanges().catch(() => {});
    }
    return revision;
  }

  /** Translates driver failures into KvUnavailable; CAS conflicts pass through. */
  private async run<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof RevisionConflict) throw e;
      throw new KvUnavailable(`${this.backend}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
}

interface Row {
  key: string;
  value: Uint8Array;
  revision: number | string;
}

function toEntry(r: Row): KvEntry {
  return { key: r.key, value: new Uint8Array(r.value), revision: Number(r.revision) };
}

function toBuf(v: Uint8Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function expiry(options: WriteOptions | undefined): number | null {
  return options?.ttlMs ? Date.now() + options.ttlMs : null;
}

/** DDL for the two tables, shared by the embedded KV and the relational binding table. */
export async function createSqlKvTables(
  db: Kysely<any>,
  dialect: "sqlite" | "postgres",
  tables: SqlKvTables,
): Promise<void> {
  const blob = dialect === "postgres" ? sql.raw("bytea") : sql.raw("blob");
  const serial =
    dialect === "postgres" ? sql.raw("bigserial primary key") : sql.raw("integer primary key autoincrement");
  await sql`create table if not exists ${sql.table(tables.entries)} (
    key text primary key, value ${blob} not null, revision bigint not null, expires_at bigint)`.execute(db);
  await sql`create table if not exists ${sql.table(tables.changes)} (id ${serial}, key text not null, value
    ${blob})`.execute(db);
}
