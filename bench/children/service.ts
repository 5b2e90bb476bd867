/**
 * The service under test, in a process of its own (the load generator runs in the parent, so each
 * gets one of the machine's cores). Configured by the IDMAP_* environment the parent passes; answers
 * `ready` with its ports and stops on `stop`.
 *
 * With IDMAP_BENCH_TRACE=1 (the stream bench's latency run) it also notes, per revision, when the
 * change hub received it from the KV watch and when the hub's flush began and ended (the SSE write
 * happens inside it), and the event loop's delay; `trace` answers them (and starts afresh). With
 * IDMAP_BENCH_UNCORK=1, an experiment: response writes leave the socket at once (see below).
 */
import { ServerResponse } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { loadConfig } from "../../src/app/config.js";
import { ChangeHub } from "../../src/app/changes/change-hub.js";
import { startServer } from "../../src/app/server.js";

const send = (m: object) => process.send?.(m);
const now = () => performance.timeOrigin + performance.now();

/** Revision → [received from the watch, flush began, flush ended]. */
let trace = new Map<number, [number, number, number]>();
const loop = monitorEventLoopDelay({ resolution: 1 });

if (process.env.IDMAP_BENCH_TRACE === "1") {
  // Wraps the hub's private receive/flush (bench-only instrumentation; the product has no hook for it).
  const proto = ChangeHub.prototype as unknown as {
    receive(c: { revision: number }): void;
    flush(): void;
    pending: { revision: number }[];
  };
  const receive = proto.receive;
  proto.receive = function (this: typeof proto, c) {
    if (!trace.has(c.revision)) trace.set(c.revision, [now(), 0, 0]);
    receive.call(this, c);
  };
  const flush = proto.flush;
  proto.flush = function (this: typeof proto) {
    const batch = this.pending;
    const began = now();
    flush.call(this);
    const ended = now();
    for (const e of batch) {
      const t = trace.get(e.revision);
      if (t && t[1] === 0) {
        t[1] = began;
        t[2] = ended;
      }
    }
  };
  loop.enable();
}

if (process.env.IDMAP_BENCH_UNCORK === "1") {
  // Experiment (--uncork): node's res.write corks the socket and uncorks it on process.nextTick, which,
  // for a write made inside a microtask, waits until the whole microtask queue has drained. This
  // sends every response write at once instead, to measure what that wait costs the stream.
  const write = ServerResponse.prototype.write as (this: ServerResponse, ...a: unknown[]) => boolean;
  (ServerResponse.prototype as unknown as { write: typeof write }).write = function (this: ServerResponse, ...a) {
    const ok = write.apply(this, a);
    if (this.socket?.writableCorked) this.socket.uncork();
    return ok;
  };
}

try {
  const server = await startServer(loadConfig(process.env));
  process.on("message", (m: { type: string }) => {
    if (m.type === "trace") {
      send({
        type: "trace",
        revisions: [...trace],
        loopDelay: { p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6, meanMs: loop.mean / 1e6 },
      });
      trace = new Map();
      loop.reset();
      return;
    }
    if (m.type !== "stop") return;
    server.close().finally(() => process.exit(0));
  });
  process.on("disconnect", () => void server.close().finally(() => process.exit(0)));
  send({ type: "ready", restPort: server.restPort, grpcPort: server.grpcPort });
} catch (e) {
  send({ type: "error", error: e instanceof Error ? e.message : String(e) });
  process.exit(1);
}
