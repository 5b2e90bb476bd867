import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import { loadConfig } from "../../src/app/config.js";
import { createApp, type App } from "../../src/app/container.js";
import { silentLogger } from "../../src/app/logger.js";
import { followChanges, IdentityCache, readSnapshot, RevisionGone } from "../../src/client/index.js";
import type { ChangeEvent } from "../../src/client/stream-types.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { until } from "../support/servers.js";

/** One store several service instances share, as a backend provides it. */
export interface StreamStore {
  /** A KV client on the store; each instance gets its own (the same object where the backend has one client). */
  client(): Promise<IdentityKv>;
  /** Makes the store forget its history so far, as its own housekeeping would (trim, compaction). */
  forget(kv: IdentityKv): Promise<void>;
  cleanup(): Promise<void>;
}

export interface StreamContractOptions {
  /**
   * The store keeps every change, so a resumed follower sees exactly the changes it missed. False for
   * JetStream with history 1: a key changed twice while the follower was away arrives once, at its
   * latest value (the bucket holds nothing older), so the follower ends with the same state.
   */
  readonly keepsEveryChange: boolean;
}

interface Instance {
  readonly app: App;
  readonly rest: FastifyInstance;
  readonly url: string;
  close(): Promise<void>;
}

const READER = "reader-token-0123456789";
const WRITER = "writer-token-0123456789";

async function instance(kv: IdentityKv, env: Record<string, string> = {}): Promise<Instance> {
  const config = loadConfig({
    IDMAP_DATA_DIR: ":memory:",
    IDMAP_LOG_LEVEL: "silent",
    CANONICAL_IDENTITY_MAP_ENABLED: "on",
    IDMAP_CHANGES_HEARTBEAT: "200ms",
    ...env,
  });
  const app = await createApp(config, { logger: silentLogger, kv });
  const rest = await buildRestApp(app, {
    authorize: (req, need) =>
      app.authenticator.authorize({ authorization: req.headers.authorization, transport: "rest" }, need),
  });
  await rest.listen({ port: 0, host: "127.0.0.1" });
  const addr = rest.server.address();
  const url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  return {
    app,
    rest,
    url,
    close: async () => {
      await rest.close();
      await app.close();
    },
  };
}

/** A follower over HTTP, as any client would be: it records what it got until stopped. */
function follow(url: string, since: number | undefined, token?: string) {
  const abort = new AbortController();
  const events: ChangeEvent[] = [];
  let error: unknown;
  const done = (async () => {
    try {
      for await (const item of followChanges(
        { baseUrl: url, signal: abort.signal, ...(token ? { token } : {}) },
        since,
      ))
        if (item.type === "change") events.push(item.change);
    } catch (e) {
      if (!abort.signal.aborted) error = e;
    }
  })();
  return {
    events,
    get error() {
      return error;
    },
    get last(): number {
      return events[events.length - 1]?.revision ?? since ?? 0;
    },
    async stop() {
      abort.abort();
      await done;
    },
  };
}

let tag = 0;
/** `n` new devices, each with its own MAC: every key of theirs is new. */
function devices(n: number) {
  const t = ++tag;
  return Array.from({ length: n }, (_, i) => {
    const x = (t * 1000 + i).toString(16).padStart(6, "0");
    return {
      device_id: `stream-${t}-${i}`,
      mac: `02:00:00:${x.slice(0, 2)}:${x.slice(2, 4)}:${x.slice(4, 6)}`,
      source: "agent",
    };
  });
}

const macOf = (m: string) => m.toUpperCase();
const keyOf = (e: ChangeEvent) => `${e.key.kind}/${e.key.value}`;
const sameChanges = (events: readonly ChangeEvent[]) =>
  events.map((e) => ({ revision: e.revision, key: keyOf(e), op: e.operation, to: e.canonical_device_id }));
/** The latest change of each key: the state a follower ends with. */
const finalState = (events: readonly ChangeEvent[]) => {
  const m = new Map<string, string | null>();
  for (const e of events) m.set(keyOf(e), e.operation === "delete" ? null : e.canonical_device_id);
  return Object.fromEntries([...m].sort());
};

function expectNoRepeats(events: readonly ChangeEvent[]): void {
  const seen = new Set<string>();
  let prev = 0;
  for (const e of events) {
    const k = `${e.revision}:${keyOf(e)}`;
    expect(seen.has(k), `change ${k} delivered twice`).toBe(false);
    seen.add(k);
    expect(e.revision).toBeGreaterThanOrEqual(prev);
    prev = e.revision;
  }
}

const hasMacs = (events: readonly ChangeEvent[], macs: readonly string[]) => {
  const keys = new Set(events.filter((e) => e.key.kind === "mac").map((e) => e.key.value));
  return macs.every((m) => keys.has(macOf(m)));
};

/**
 * The change stream on one backend, end to end over HTTP: resume without gap or repeat, the same
 * stream from every instance on one store, 410 and recovery through a snapshot, and the reader role.
 */
export function changeStreamContract(
  name: string,
  openStore: () => Promise<StreamStore>,
  options: StreamContractOptions,
) {
  describe(`change stream: ${name}`, () => {
    let store: StreamStore;
    let a: Instance;
    let b: Instance;
    let aKv: IdentityKv;

    beforeAll(async () => {
      store = await openStore();
      aKv = await store.client();
      a = await instance(aKv);
      b = await instance(await store.client());
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await store?.cleanup();
    });

    it("a follower cut off mid-stream resumes on another instance and misses nothing, sees nothing twice", async () => {
      const start = await a.app.changes.head();
      const reference = follow(a.url, start);
      const first = follow(a.url, start);
      const batch1 = devices(30);
      const publishing = (async () => {
        for (const d of batch1) await a.app.publish.publish([d], "test");
      })();
      await until("the first follower's first changes", () => first.events.length >= 5, 10_000);
      await first.stop();
      await publishing;
      const batch2 = devices(30);
      await b.app.publish.publish(batch2, "test");
      const resumed = follow(b.url, first.last);
      const macs = [...batch1, ...batch2].map((d) => d.mac);
      await until("the reference follower to see every MAC", () => hasMacs(reference.events, macs), 15_000);
      await new Promise((r) => setTimeout(r, 300));
      const final = reference.last;
      await until("the resumed follower to catch up", () => resumed.last >= final, 15_000);
      await Promise.all([reference.stop(), resumed.stop()]);
      expect(resumed.error).toBeUndefined();

      const seen = [...first.events, ...resumed.events];
      expectNoRepeats(seen);
      expectNoRepeats(reference.events);
      if (options.keepsEveryChange) expect(sameChanges(seen)).toEqual(sameChanges(reference.events));
      else expect(finalState(seen)).toEqual(finalState(reference.events));
      expect(hasMacs(seen, macs)).toBe(true);
    });

    it("two instances on one store serve the same stream", async () => {
      const start = await a.app.changes.head();
      const fa = follow(a.url, start);
      const fb = follow(b.url, start);
      const batch = devices(20);
      for (const [i, d] of batch.entries()) await (i % 2 === 0 ? a : b).app.publish.publish([d], "test");
      const macs = batch.map((d) => d.mac);
      await until(
        "both followers to see every MAC",
        () => hasMacs(fa.events, macs) && hasMacs(fb.events, macs),
        15_000,
      );
      await new Promise((r) => setTimeout(r, 300));
      await Promise.all([fa.stop(), fb.stop()]);
      expect(fa.events.length).toBeGreaterThanOrEqual(batch.length * 2);
      expect(sameChanges(fb.events)).toEqual(sameChanges(fa.events));
    });

    it("a follower too far behind gets 410 with the revision to re-snapshot at, and a cache recovers through a snapshot", async () => {
      const start = await a.app.changes.head();
      const before = devices(10);
      await a.app.publish.publish(before, "test");
      await store.forget(aKv);

      const res = await fetch(`${a.url}/v1/changes?since=${start}`);
      expect(res.status).toBe(410);
      const body = (await res.json()) as { error: { code: string; field: string; revision: number } };
      expect(body.error.code).toBe("revision_compacted");
      expect(body.error.field).toBe("since");
      expect(body.error.revision).toBeGreaterThan(start);
      const resumed = await fetch(`${b.url}/v1/changes`, { headers: { "last-event-id": String(start) } });
      expect(resumed.status).toBe(410);
      expect(((await resumed.json()) as { error: { field: string } }).error.field).toBe("last-event-id");
      await expect(
        (async () => {
          for await (const _ of followChanges({ baseUrl: b.url }, start)) return;
        })(),
      ).rejects.toBeInstanceOf(RevisionGone);

      // A snapshot names a revision the store still remembers; following from it works.
      const snap = await readSnapshot({ baseUrl: b.url }, () => {});
      expect(snap.revision).toBeGreaterThanOrEqual(body.error.revision);
      const cache = new IdentityCache({ urls: [a.url, b.url], reconnect: { initialMs: 20, maxMs: 200 } });
      try {
        await cache.start();
        const after = devices(10);
        await b.app.publish.publish(after, "test");
        for (const d of [...before, ...after]) {
          const lookup = { identity_keys: [{ kind: "mac" as const, value: d.mac.replace(/:/g, "-") }] };
          await until(`the cache to hold ${d.mac}`, () => cache.lookupLocal(lookup).found, 10_000);
          const local = cache.lookupLocal(lookup);
          const service = await a.app.lookup.lookup({ identityKeys: lookup.identity_keys });
          expect(local.record?.canonical_device_id).toBe(service.record?.canonicalDeviceId);
          expect(local.revision).toBe(service.revision);
        }
        // A heartbeat may name a revision whose change is still on its way; the next one settles it.
        await until("the cache to be current", () => cache.current, 5_000);
        expect(cache.lag().revisions).toBe(0);
      } finally {
        await cache.close();
      }
    });

    it("a cache whose instance goes away reconnects to the next and, told it is too far behind, re-snapshots", async () => {
      const kv = await store.client();
      const c = await instance(kv);
      const errors: string[] = [];
      // The first reconnect waits long enough for the store to forget what the cache missed meanwhile.
      const cache = new IdentityCache({
        urls: [c.url, b.url],
        reconnect: { initialMs: 1_500, maxMs: 1_500 },
        onError: (e) => errors.push(e.name),
      });
      try {
        await cache.start();
        await c.close();
        const missed = devices(10);
        await b.app.publish.publish(missed, "test");
        await store.forget(aKv);
        const later = devices(5);
        await b.app.publish.publish(later, "test");
        for (const d of [...missed, ...later]) {
          const lookup = { identity_keys: [{ kind: "mac" as const, value: d.mac }] };
          await until(`the cache to hold ${d.mac}`, () => cache.lookupLocal(lookup).found && cache.current, 15_000);
          expect(cache.lookupLocal(lookup).record?.canonical_device_id).toBe(d.device_id);
        }
        expect(errors).toContain("RevisionGone");
      } finally {
        await cache.close();
      }
    });

    it("with auth on, a reader may snapshot and watch; a request without a token may not", async () => {
      const kv = await store.client();
      const secured = await instance(kv, { IDMAP_AUTH_TOKENS: `${READER}:reader,${WRITER}:writer` });
      try {
        for (const path of ["/v1/changes", "/v1/snapshot"]) {
          const anonymous = await fetch(`${secured.url}${path}`);
          expect(anonymous.status, path).toBe(401);
          expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe("unauthenticated");
          const wrong = await fetch(`${secured.url}${path}`, {
            headers: { authorization: "Bearer not-a-token-at-all" },
          });
          expect(wrong.status, path).toBe(401);
        }
        const snap = await readSnapshot({ baseUrl: secured.url, token: READER }, () => {});
        const watcher = follow(secured.url, snap.revision, READER);
        const batch = devices(3);
        await secured.app.publish.publish(batch, "test");
        await until(
          "the reader to see the changes",
          () =>
            hasMacs(
              watcher.events,
              batch.map((d) => d.mac),
            ),
          10_000,
        );
        await watcher.stop();
        expect(watcher.error).toBeUndefined();
      } finally {
        await secured.close();
      }
    });
  });
}
