import { afterEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { ChangeHub } from "../../src/app/changes/change-hub.js";
import type { ChangeEvent, ChangeSink } from "../../src/ports/changes.js";
import type { KvChange } from "../../src/ports/identity-kv.js";
import { silentLogger } from "../../src/ports/logger.js";

/**
 * When the hub sends a batch (HubOptions.coalesceMs): at most one batch per interval, the first
 * change after a quiet interval at the end of the task that delivered it (not on a timer, which a
 * busy event loop reaches late), a batch never splitting what the store delivered in one task.
 */
const decode = (c: KvChange): ChangeEvent => ({
  revision: c.revision,
  key: { kind: "mac", value: c.key.slice("n/".length) },
  operation: c.value ? "put" : "delete",
  record: null,
});

/** Lets every queued microtask run, but no timer and no I/O callback. */
const microtasks = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};
const busyWait = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* the event loop is blocked, as by a service busy with requests */
  }
};

describe("ChangeHub batching", () => {
  const hubs: ChangeHub[] = [];
  afterEach(async () => {
    for (const h of hubs.splice(0)) await h.stop();
  });

  async function follower(coalesceMs: number) {
    const kv = new MemoryKv();
    const hub = new ChangeHub(kv, "n/", decode, silentLogger, { bufferSize: 1000, heartbeatMs: 60_000, coalesceMs });
    hubs.push(hub);
    const batches: number[][] = [];
    const sink: ChangeSink = {
      changes: (b) => void batches.push(b.map((e) => e.revision)),
      heartbeat: () => {},
      end: () => {},
    };
    await hub.follow(0, sink, "rest");
    return { kv, batches };
  }

  it("sends the first change after a quiet interval at the end of its task, not after the interval", async () => {
    const { kv, batches } = await follower(10_000);
    const r = await kv.create("n/a", new Uint8Array([1]));
    await microtasks();
    expect(batches).toEqual([[r]]);
  });

  it("holds a change that follows within the interval until the interval has passed", async () => {
    const { kv, batches } = await follower(80);
    const r1 = await kv.create("n/a", new Uint8Array([1]));
    await microtasks();
    const r2 = await kv.create("n/b", new Uint8Array([1]));
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([[r1]]); // not yet: one batch per 80 ms at most
    await new Promise((r) => setTimeout(r, 150));
    expect(batches).toEqual([[r1], [r2]]);
  });

  it("sends what is due from the task that delivers a change, without waiting for the timer", async () => {
    const { kv, batches } = await follower(30);
    const r1 = await kv.create("n/a", new Uint8Array([1]));
    await microtasks();
    const r2 = await kv.create("n/b", new Uint8Array([1])); // within the interval: timed
    // The event loop is blocked past the interval (the timer cannot fire); then more changes come
    // in one task: they and the held one go out together at its end, as one batch, in order.
    busyWait(50);
    const [r3, r4] = await Promise.all([kv.create("n/c", new Uint8Array([1])), kv.create("n/d", new Uint8Array([1]))]);
    await microtasks();
    expect(batches).toEqual([[r1], [r2, r3, r4]]);
    // The timer that was set for r2 sends nothing again.
    await new Promise((r) => setTimeout(r, 80));
    expect(batches).toEqual([[r1], [r2, r3, r4]]);
  });

  it("with coalesceMs 0 sends every task's changes together at its end", async () => {
    const { kv, batches } = await follower(0);
    const rs = await Promise.all(["a", "b", "c"].map((k) => kv.create(`n/${k}`, new Uint8Array([1]))));
    await microtasks();
    expect(batches.flat()).toEqual(rs);
  });
});
