import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RevisionConflict } from "../../src/domain/errors.js";
import type { IdentityKv, KvChange } from "../../src/ports/identity-kv.js";

export interface KvUnderTest {
  readonly kv: IdentityKv;
  /** Called once after the suite; drops what the suite created. */
  cleanup(): Promise<void>;
}

export interface KvContractOptions {
  /** A second client on the same store, when the backend supports several (for watch across clients). */
  readonly secondClient?: (first: IdentityKv) => Promise<IdentityKv>;
  /** How the backend's scan pages (identity-kv.test.ts's table says it per backend). */
  readonly scan?: ScanPaging;
}

/** What a backend's `scan` promises beyond the port's contract (every live entry once, at least as new as the revision). */
export interface ScanPaging {
  /** "limit": no page holds more than the page size; "hint": the store takes it as a hint (Redis SCAN's COUNT). */
  readonly pageSize: "limit" | "hint";
  /**
   * When a page is read. "on-demand": when the caller asks for it, so a change made before then shows
   * in it (SQLite, Redis, memory). "pinned": at the scan's revision, whenever asked (etcd). "pushed":
   * the server sends the listing ahead of the reader (JetStream), so a later change may or may not show.
   */
  readonly reads: "on-demand" | "pinned" | "pushed";
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/**
 * The IdentityKv contract. Every adapter runs it against its real server by calling it with a factory.
 * Keys are unique per run so suites can share a server.
 */
export function kvContract(name: string, factory: () => Promise<KvUnderTest>, options: KvContractOptions = {}): void {
  describe(`IdentityKv contract: ${name}`, () => {
    let sut: KvUnderTest;
    let kv: IdentityKv;
    const run = `contract_${randomUUID().replace(/-/g, "")}`;
    let n = 0;
    const fresh = () => `${run}/t${++n}/`;

    beforeAll(async () => {
      sut = await factory();
      kv = sut.kv;
    });
    afterAll(async () => {
      await sut?.cleanup();
    });

    it("reads an absent key as null", async () => {
      expect(await kv.get(`${fresh()}missing`)).toBeNull();
    });

    it("creates a key once; a second create is a conflict", async () => {
      const key = `${fresh()}a`;
      const rev = await kv.create(key, enc("one"));
      const got = await kv.get(key);
      expect(got).not.toBeNull();
      expect(dec(got!.value)).toBe("one");
      expect(got!.revision).toBe(rev);
      await expect(kv.create(key, enc("two"))).rejects.toBeInstanceOf(RevisionConflict);
      expect(dec((await kv.get(key))!.value)).toBe("one");
    });

    it("updates only at the current revision", async () => {
      const key = `${fresh()}a`;
      const r1 = await kv.create(key, enc("v1"));
      const r2 = await kv.update(key, enc("v2"), r1);
      expect(r2).toBeGreaterThan(r1);
      await expect(kv.update(key, enc("stale"), r1)).rejects.toBeInstanceOf(RevisionConflict);
      const got = await kv.get(key);
      expect(dec(got!.value)).toBe("v2");
      expect(got!.revision).toBe(r2);
    });

    it("refuses to update an absent key", async () => {
      await expect(kv.update(`${fresh()}absent`, enc("x"), 1)).rejects.toBeInstanceOf(RevisionConflict);
    });

    it("deletes only at the current revision; an absent key reads null and can be created again", async () => {
      const key = `${fresh()}a`;
      const r1 = await kv.create(key, enc("v1"));
      const r2 = await kv.update(key, enc("v2"), r1);
      await expect(kv.delete(key, r1)).rejects.toBeInstanceOf(RevisionConflict);
      expect(await kv.get(key)).not.toBeNull();
      await kv.delete(key, r2);
      expect(await kv.get(key)).toBeNull();
      await expect(kv.delete(key, r2)).rejects.toBeInstanceOf(RevisionConflict);
      const r3 = await kv.create(key, enc("again"));
      expect(r3).toBeGreaterThan(r2);
      expect(dec((await kv.get(key))!.value)).toBe("again");
    });

    it("batch get returns entries in request order with null for absent keys", async () => {
      const p = fresh();
      const keys = Array.from({ length: 300 }, (_, i) => `${p}k${i}`);
      const revs = new Map<string, number>();
      for (const k of keys.filter((_, i) => i % 3 !== 0)) revs.set(k, await kv.create(k, enc(k)));
      const got = await kv.getMany([...keys, `${p}nope`, keys[1]!]);
      expect(got).toHaveLength(keys.length + 2);
      keys.forEach((k, i) => {
        if (i % 3 === 0) expect(got[i]).toBeNull();
        else {
          expect(got[i]!.key).toBe(k);
          expect(dec(got[i]!.value)).toBe(k);
          expect(got[i]!.revision).toBe(revs.get(k));
        }
      });
      expect(got[keys.length]).toBeNull();
      expect(got[keys.length + 1]!.key).toBe(keys[1]);
      expect(await kv.getMany([])).toEqual([]);
    });

    it("lists exactly the entries under a prefix, with a revision covering them", async () => {
      const p = fresh();
      const revs: number[] = [];
      for (const k of ["a", "b", "c/d"]) revs.push(await kv.create(`${p}${k}`, enc(k)));
      await kv.create(`${p.slice(0, -1)}x/other`, enc("outside"));
      const deleted = await kv.create(`${p}gone`, enc("gone"));
      await kv.delete(`${p}gone`, deleted);
      const { entries, revision } = await kv.list(p);
      expect(entries.map((e) => e.key).sort()).toEqual([`${p}a`, `${p}b`, `${p}c/d`]);
      expect(revision).toBeGreaterThanOrEqual(Math.max(...revs));
    });

    it("watch delivers every change after a revision, with its revision, in order", async () => {
      const p = fresh();
      const start = (await kv.list(p)).revision;
      const seen: KvChange[] = [];
      const watcher = options.secondClient ? await options.secondClient(kv) : kv;
      const h = await watcher.watch(
        p,
        start,
        (c) => seen.push(c),
        (e) => seen.push({ key: `error:${e.message}`, value: null, revision: -1 }),
      );
      try {
        const expected: { key: string; value: string | null; revision: number }[] = [];
        const r1 = await kv.create(`${p}x`, enc("1"));
        expected.push({ key: `${p}x`, value: "1", revision: r1 });
        const r2 = await kv.update(`${p}x`, enc("2"), r1);
        expected.push({ key: `${p}x`, value: "2", revision: r2 });
        const r3 = await kv.create(`${p}y`, enc("3"));
        expected.push({ key: `${p}y`, value: "3", revision: r3 });
        await kv.delete(`${p}x`, r2);
        const r4 = (await kv.list(p)).revision;
        expected.push({ key: `${p}x`, value: null, revision: r4 });
        await kv.create(`${p.slice(0, -1)}z/unrelated`, enc("no"));
        await waitFor(() => seen.length >= expected.length);
        await new Promise((r) => setTimeout(r, 100));
        const got = seen.map((c) => ({ key: c.key, value: c.value ? dec(c.value) : null, revision: c.revision }));
        expect(got.slice(0, 3)).toEqual(expected.slice(0, 3));
        expect(got[3]!.key).toBe(`${p}x`);
        expect(got[3]!.value).toBeNull();
        expect(got[3]!.revision).toBeGreaterThan(r3);
        expect(got).toHaveLength(4);
      } finally {
        await h.stop();
        if (watcher !== kv) await watcher.close();
      }
    });

    it("watch resumes from a revision and delivers the latest state of what changed since", async () => {
      const p = fresh();
      const r1 = await kv.create(`${p}a`, enc("a1"));
      const r2 = await kv.update(`${p}a`, enc("a2"), r1);
      const r3 = await kv.create(`${p}b`, enc("b1"));
      const seen: KvChange[] = [];
      const h = await kv.watch(
        p,
        r1,
        (c) => seen.push(c),
        () => {},
      );
      try {
        await waitFor(() => seen.some((c) => c.revision === r3));
        expect(seen.every((c) => c.revision > r1)).toBe(true);
        const last = new Map(seen.map((c) => [c.key, c]));
        expect(dec(last.get(`${p}a`)!.value!)).toBe("a2");
        expect(last.get(`${p}a`)!.revision).toBe(r2);
        expect(dec(last.get(`${p}b`)!.value!)).toBe("b1");
      } finally {
        await h.stop();
      }
    });

    it("32 concurrent writers doing 200 CAS increments each on 4 keys lose nothing", { timeout: 240_000 }, async () => {
      const p = fresh();
      const keys = [0, 1, 2, 3].map((i) => `${p}counter${i}`);
      for (const k of keys) await kv.create(k, enc("0"));
      let conflicts = 0;
      const increment = async (key: string) => {
        for (;;) {
          const cur = await kv.get(key);
          try {
            await kv.update(key, enc(String(Number(dec(cur!.value)) + 1)), cur!.revision);
            return;
          } catch (e) {
            if (!(e instanceof RevisionConflict)) throw e;
            conflicts++;
          }
        }
      };
      await Promise.all(
        Array.from({ length: 32 }, async (_, w) => {
          for (let i = 0; i < 200; i++) await increment(keys[(w + i) % 4]!);
        }),
      );
      const values = await kv.getMany(keys);
      const total = values.reduce((s, e) => s + Number(dec(e!.value)), 0);
      expect(total).toBe(6400);
      expect(conflicts).toBeGreaterThan(0);
    });

    it("scans a prefix page by page: every live entry once, at least as new as the scan's revision", async () => {
      const p = fresh();
      const before = (await kv.list(p)).revision;
      for (let i = 0; i < 25; i++) await kv.create(`${p}k${String(i).padStart(2, "0")}`, enc(String(i)));
      const gone = await kv.create(`${p}gone`, enc("x"));
      await kv.delete(`${p}gone`, gone);
      await kv.create(`${fresh()}other`, enc("not under the prefix"));
      const scan = await kv.scan(p, 10);
      expect(scan.revision).toBeGreaterThanOrEqual(before);
      const seen: string[] = [];
      for await (const page of scan.pages) {
        expect(page.length).toBeGreaterThan(0);
        for (const e of page) {
          seen.push(e.key);
          expect(dec(e.value)).toBe(String(Number(e.key.slice(-2))));
        }
      }
      expect(seen.sort()).toEqual(Array.from({ length: 25 }, (_, i) => `${p}k${String(i).padStart(2, "0")}`));
      const empty = await kv.scan(fresh(), 10);
      for await (const _ of empty.pages) throw new Error("an empty prefix has no page");
    });

    // How a backend pages is a row of its table (identity-kv.test.ts); suites that do not say run the rest.
    const paging = options.scan;
    if (paging) {
      it("scan pages hold at most the page size and come in key order where the store keeps one", async () => {
        const p = fresh();
        for (let i = 0; i < 35; i++) await kv.create(`${p}k${String(i).padStart(2, "0")}`, enc(String(i)));
        const scan = await kv.scan(p, 10);
        const pages: string[][] = [];
        for await (const page of scan.pages) pages.push(page.map((e) => e.key));
        expect(pages.flat().sort()).toHaveLength(35);
        if (paging.pageSize === "limit") {
          expect(pages.length).toBeGreaterThanOrEqual(4);
          for (const page of pages) expect(page.length).toBeLessThanOrEqual(10);
        }
        // A store that orders keys (etcd, SQL, memory) pages through them in order.
        if (paging.reads !== "pushed" && paging.pageSize === "limit")
          expect(pages.flat()).toEqual([...pages.flat()].sort());
      });

      it("scan reads a page when it is asked for, or pins every page to the scan's revision, as the backend says", async () => {
        const p = fresh();
        const key = (i: number) => `${p}k${String(i).padStart(2, "0")}`;
        const first: number[] = [];
        for (let i = 0; i < 30; i++) first.push(await kv.create(key(i), enc(`v${i}`)));
        const scan = await kv.scan(p, 10);
        const it = scan.pages[Symbol.asyncIterator]();
        const head = await it.next();
        expect(head.done).toBe(false);
        const seen = new Map<string, { value: string; revision: number }>();
        for (const e of head.value as readonly { key: string; value: Uint8Array; revision: number }[])
          seen.set(e.key, { value: dec(e.value), revision: e.revision });
        // Two keys the first page did not hold: one deleted, one updated, before the rest is read.
        const unseen = Array.from({ length: 30 }, (_, i) => i).filter((i) => !seen.has(key(i)));
        expect(unseen.length).toBeGreaterThanOrEqual(2);
        const [gone, changed] = [unseen[unseen.length - 1]!, unseen[unseen.length - 2]!];
        await kv.delete(key(gone), first[gone]!);
        const changedAt = await kv.update(key(changed), enc("newer"), first[changed]!);
        for (let r = await it.next(); !r.done; r = await it.next())
          for (const e of r.value) {
            expect(seen.has(e.key)).toBe(false);
            seen.set(e.key, { value: dec(e.value), revision: e.revision });
          }
        // The keys nothing changed read as written.
        for (let i = 0; i < 30; i++)
          if (i !== gone && i !== changed) expect(seen.get(key(i))).toEqual({ value: `v${i}`, revision: first[i] });
        if (paging.reads === "on-demand") {
          expect(seen.has(key(gone))).toBe(false);
          expect(seen.get(key(changed))).toEqual({ value: "newer", revision: changedAt });
          expect(seen.size).toBe(29);
        } else if (paging.reads === "pinned") {
          expect(seen.get(key(gone))).toEqual({ value: `v${gone}`, revision: first[gone] });
          expect(seen.get(key(changed))).toEqual({ value: `v${changed}`, revision: first[changed] });
          expect(seen.size).toBe(30);
        } else {
          // Pushed ahead: either what was sent before the change or after it, never anything else.
          const g = seen.get(key(gone));
          if (g) expect(g).toEqual({ value: `v${gone}`, revision: first[gone] });
          expect([
            JSON.stringify({ value: `v${changed}`, revision: first[changed] }),
            JSON.stringify({ value: "newer", revision: changedAt }),
          ]).toContain(JSON.stringify(seen.get(key(changed))));
          expect(seen.size).toBe(g ? 30 : 29);
        }
      });
    }

    it("scan refuses a page size that is not a positive integer, before reading anything", async () => {
      const p = fresh();
      await kv.create(`${p}a`, enc("a"));
      for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
        await expect(kv.scan(p, bad)).rejects.toThrow(/page size must be a positive integer/);
      // Still answers a good one.
      const scan = await kv.scan(p, 1);
      const keys: string[] = [];
      for await (const page of scan.pages) keys.push(...page.map((e) => e.key));
      expect(keys).toEqual([`${p}a`]);
    });

    it("says a watch can resume after the newest revision, and not after one the store never reached", async () => {
      const p = fresh();
      const r1 = await kv.create(`${p}a`, enc("1"));
      const now = await kv.resumePoint(r1);
      expect(now.resumable).toBe(true);
      expect(now.head).toBeGreaterThanOrEqual(r1);
      expect((await kv.resumePoint(r1 - 1)).resumable).toBe(true);
      const ahead = await kv.resumePoint(now.head + 1_000_000);
      expect(ahead.resumable).toBe(false);
      expect(ahead.reason).toMatch(/ahead/);
    });
  });
}

export async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting for condition");
    await new Promise((r) => setTimeout(r, 10));
  }
}
