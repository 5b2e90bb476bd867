import { type Kysely, Migrator } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import { migrateToLatest, migrations, RENAMED_REASONS } from "../../src/adapters/db/migrations.js";
import { openPostgres } from "../../src/adapters/db/postgres.js";
import { openSqlite } from "../../src/adapters/db/sqlite.js";
import { forBackend } from "../support/backends.js";
import { scratchDatabase } from "../support/postgres.js";

/** An audit trail written before migration 006 reads with design.md §5's reason names after it. */
function reasonMigration(dialect: "sqlite" | "postgres", open: () => Promise<Kysely<any>>) {
  it("renames every old reason, and leaves the others as they were", async () => {
    const db = await open();
    try {
      const all = migrations(dialect);
      const migrator = new Migrator({ db, provider: { getMigrations: async () => all } });
      const to005 = await migrator.migrateTo("005_provisional");
      expect(to005.error).toBeUndefined();
      const old = [...Object.keys(RENAMED_REASONS), "absorbed", "quarantined", "released"];
      await db
        .insertInto("binding_audit")
        .values(
          old.map((reason, i) => ({
            at: i,
            actor: "publisher",
            kind: "mac",
            value: `02:00:00:00:00:0${i}`,
            from_device_id: null,
            to_device_id: "d",
            revision: i,
            reason,
          })),
        )
        .execute();
      await migrateToLatest(db, dialect);
      const rows = await db.selectFrom("binding_audit").select(["at", "reason"]).orderBy("at").execute();
      expect(rows.map((r) => r.reason)).toEqual([
        "created",
        "moved",
        "moved",
        "merged",
        "merged",
        "expired",
        "hydrated",
        "absorbed",
        "quarantined",
        "released",
      ]);
    } finally {
      await db.destroy();
    }
  });
}

describe("migration 006: audit reasons take design.md's names", () => {
  forBackend("sqlite", () => describe("sqlite", () => reasonMigration("sqlite", async () => openSqlite(":memory:"))));
  forBackend("postgres", () =>
    describe("postgres", () => {
      let scratch: Awaited<ReturnType<typeof scratchDatabase>> | undefined;
      afterAll(async () => scratch?.drop());
      reasonMigration("postgres", async () => {
        scratch = await scratchDatabase();
        return openPostgres(scratch.url);
      });
    }),
  );
});
