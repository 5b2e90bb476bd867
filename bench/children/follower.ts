/**
 * The measured follower of the latency run, in a process of its own (so its parsing does not share
 * the publisher's event loop): an IdentityCache over loopback HTTP, plus a raw SSE reader on a
 * second connection that only notes when each revision's bytes arrived. Every time is
 * `performance.timeOrigin + performance.now()` (ms since the epoch, sub-millisecond), comparable
 * with the publisher's and the service's on the same machine.
 *
 * Messages: `start` {url} → `started`; `count` → `count` {applied}; `finish` → `finished` {applied,
 * raw, loopDelay}; `stop` ends the process.
 */
import { get } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { IdentityCache } from "../../src/client/identity-cache.js";

const send = (m: object) => process.send?.(m);
const now = () => performance.timeOrigin + performance.now();

/** MAC → [revision, applied at, the time the parser pulled the last chunk before it]. */
const applied: [string, number, number, number][] = [];
/** Revision → when its `id:` line arrived on the raw connection. */
const raw: [number, number][] = [];
let lastChunkPulled = 0;
let cache: IdentityCache | undefined;
let rawReq: ReturnType<typeof get> | undefined;
const loop = monitorEventLoopDelay({ resolution: 1 });

/** A fetch whose response bodies note when the parser pulls each chunk. */
const timedFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  if (!res.body || !String(input).includes("/v1/changes")) return res;
  const body = res.body as unknown as AsyncIterable<Uint8Array>;
  async function* timed(): AsyncGenerator<Uint8Array> {
    for await (const chunk of body) {
      lastChunkPulled = now();
      yield chunk;
    }
  }
  return { ok: res.ok, status: res.status, body: timed(), json: () => res.json() } as unknown as Response;
};

function rawFollow(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    rawReq = get(`${url}/v1/changes`, { headers: { accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`raw follower: HTTP ${res.statusCode}`));
      res.socket.setNoDelay(true);
      res.setEncoding("utf8");
      let tail = "";
      res.on("data", (chunk: string) => {
        const at = now();
        const text = tail + chunk;
        const re = /\nid: (\d+)\n/g;
        let last = 0;
        for (let m = re.exec(text); m; m = re.exec(text)) {
          raw.push([Number(m[1]), at]);
          last = re.lastIndex - 1;
        }
        tail = text.slice(Math.max(last, text.length - 40));
      });
      resolve();
    });
    rawReq.on("error", () => {});
  });
}

process.on("message", (m: { type: string; url?: string }) => {
  if (m.type === "start") {
    void (async () => {
      try {
        cache = new IdentityCache({
          urls: [m.url!],
          fetch: timedFetch,
          onChange: (c) => {
            if (c.key.kind === "mac" && c.operation === "put")
              applied.push([c.key.value, c.revision, now(), lastChunkPulled]);
          },
        });
        await cache.start();
        await rawFollow(m.url!);
        loop.enable();
        send({ type: "started" });
      } catch (e) {
        send({ type: "error", error: e instanceof Error ? e.message : String(e) });
      }
    })();
  } else if (m.type === "count") {
    send({ type: "count", applied: applied.length });
  } else if (m.type === "finish") {
    void (async () => {
      loop.disable();
      rawReq?.destroy();
      await cache?.close();
      send({
        type: "finished",
        applied,
        raw,
        loopDelay: { p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6, meanMs: loop.mean / 1e6 },
      });
    })();
  } else if (m.type === "stop") process.exit(0);
});
send({ type: "ready" });
