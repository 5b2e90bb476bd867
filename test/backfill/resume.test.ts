import { afterAll, describe, expect, it } from "vitest";
import { runBackfill } from "../../src/app/backfill/backfill.js";
import { KvUnavailable } from "../../src/domain/errors.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { generateHistory } from "./history.js";
import { appsOn, dbState, kvState, readJsonLines, removeScratch, tmpFile, tombstonePairs } from "./support.js";

afterAll(removeScratch);

const history = generateHistory(1);
const newApp = appsOn(history.rows);

/** A KV that fails every call once `writes` writes went through: a crash in the middle of a chunk. */
function crashingKv(inner: IdentityKv, writes: number): IdentityKv {
  let left = writes;
  return new Proxy(inner, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== "function") return v;
      const f = (v as (...a: unknown[]) => unknown).bind(target);
      if (!["get", "getMany", "create", "update", "delete"].includes(String(prop))) return f;
      return async (...args: unknown[]) => {
        if (left <= 0) throw new KvUnavailable("connection lost");
        if (prop === "create" || prop === "update" || prop === "delete") left--;
        return f(...args);
      };
    },
  });
}

describe(`backfill --resume on a generated history of ${history.rows.length} rows`, { timeout: 180_000 }, () => {
  it("a run interrupted in the middle of a chunk and resumed ends where an uninterrupted run ends", async () => {
    const [R, B] = [await newApp(), await newApp()];
    try {
      const reference = await runBackfill(R.app, { tombstonesOut: tmpFile("reference.jsonl"), chunk: 2_000 });

      const out = tmpFile("resumed.jsonl");
      const writes = reference.summary.created + reference.summary.updated;
      await expect(
        runBackfill({ ...B.app, kv: crashingKv(B.kv, Math.round(writes / 2)) }, { tombstonesOut: out, chunk: 2_000 }),
      ).rejects.toBeInstanceOf(KvUnavailable);
      expect(await B.app.devices.getJobState("backfill")).not.toBeNull();
      const partial = readJsonLines(out).length;
      expect(partial).toBeGreaterThan(0);
      expect(partial).toBeLessThan(history.tombstones.size);

      const resumed = await runBackfill(B.app, { resume: true, chunk: 2_000 });
      expect(resumed.resumed).toBe(true);
      expect(resumed.tombstonesOut).toBe(out);
      expect(await B.app.devices.getJobState("backfill")).toBeNull();
      // Every tombstone once, and the same map and relational store as the uninterrupted run.
      expect(tombstonePairs(out)).toEqual(history.tombstones);
      expect(readJsonLines(out).length).toBe(history.tombstones.size);
      expect(await kvState(B.kv)).toEqual(await kvState(R.kv));
      expect(await dbState(B.app)).toEqual(await dbState(R.app));
    } finally {
      await R.app.close();
      await B.app.close();
    }
  });
});

const small = generateHistory(0.05);
const newSmallApp = appsOn(small.rows);

describe("backfill checkpoints", () => {
  it("stops after the chunk in progress when asked, refuses to resume with other options, and clears the checkpoint when done", async () => {
    const { app, kv } = await newSmallApp();
    try {
      const stop = new AbortController();
      const first = await runBackfill(app, {
        seedKvOnly: true,
        chunk: 200,
        signal: stop.signal,
        onProgress: (p) => (p.done >= 200 ? stop.abort() : undefined),
      });
      expect(first.interrupted).toBe(true);
      const saved = JSON.parse((await app.devices.getJobState("backfill"))!) as { position: { id: string } };
      expect(saved.position.id).not.toBe("");
      await expect(runBackfill(app, { resume: true, chunk: 200 })).rejects.toMatchObject({
        code: "config_error",
        variable: "--resume",
      });
      const done = await runBackfill(app, { seedKvOnly: true, resume: true, chunk: 200 });
      expect(done).toMatchObject({ resumed: true, interrupted: false });
      expect(done.summary.created).toBeGreaterThan(first.summary.created);
      expect(await app.devices.getJobState("backfill")).toBeNull();
      // A second seeding finds everything in place.
      const again = await runBackfill(app, { seedKvOnly: true, chunk: 200 });
      expect(again.summary).toMatchObject({ created: 0, updated: 0 });
      expect((await kv.list("")).entries.length).toBeGreaterThan(0);
    } finally {
      await app.close();
    }
  });
});
