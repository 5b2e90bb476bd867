import { afterAll, describe, expect, it } from "vitest";
import { runBackfill } from "../../src/app/backfill/backfill.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { generateHistory } from "./history.js";
import { appsOn, removeScratch, tmpFile } from "./support.js";

afterAll(removeScratch);

const history = generateHistory(0.03);
const newApp = appsOn(history.rows);

/** Records when each KV call happened and how many keys it touched (a batch read of n keys is n). */
function recordingKv(inner: IdentityKv): IdentityKv & { log: { at: number; keys: number }[] } {
  const log: { at: number; keys: number }[] = [];
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === "log") return log;
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== "function") return v;
      const f = (v as (...a: unknown[]) => unknown).bind(target);
      if (!["get", "getMany", "create", "update", "delete", "list"].includes(String(prop))) return f;
      return (...args: unknown[]) => {
        log.push({ at: performance.now(), keys: prop === "getMany" ? (args[0] as unknown[]).length : 1 });
        return f(...args);
      };
    },
  }) as IdentityKv & { log: { at: number; keys: number }[] };
}

describe("backfill --rate", { timeout: 60_000 }, () => {
  it("keeps KV operations within 10 % of the cap over the run", async () => {
    const { app, kv } = await newApp();
    try {
      const recorded = recordingKv(kv);
      const cap = 2_500;
      const r = await runBackfill(
        { ...app, kv: recorded },
        { rate: cap, tombstonesOut: tmpFile("t.jsonl"), chunk: 200 },
      );
      expect(r.summary.tombstones).toBe(history.tombstones.size);
      const ops = recorded.log.reduce((n, e) => n + e.keys, 0);
      const seconds = (recorded.log[recorded.log.length - 1]!.at - recorded.log[0]!.at) / 1000;
      expect(ops).toBeGreaterThan(cap * 1.5); // long enough for the cap to matter
      const rate = ops / seconds;
      expect(rate).toBeGreaterThan(cap * 0.9);
      expect(rate).toBeLessThan(cap * 1.1);
    } finally {
      await app.close();
    }
  });
});
