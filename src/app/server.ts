import type { FastifyInstance } from "fastify";
import { buildRestApp } from "../adapters/rest/rest-app.js";
import { compact } from "./compaction.js";
import type { Config } from "./config.js";
import { createApp, type App } from "./container.js";

export interface RunningServer {
  readonly app: App;
  readonly rest?: FastifyInstance;
  readonly restPort?: number;
  readonly grpcPort?: number;
  close(): Promise<void>;
}

/** Starts the front-ends named in IDMAP_FRONTENDS and the compaction schedule. */
export async function startServer(config: Config, app?: App): Promise<RunningServer> {
  const a = app ?? (await createApp(config));
  const closers: (() => Promise<void>)[] = [];
  let rest: FastifyInstance | undefined;
  let restPort: number | undefined;
  let grpcPort: number | undefined;
  try {
    if (config.frontends.includes("rest")) {
      rest = await buildRestApp(a);
      await rest.listen({ host: config.host, port: config.restPort });
      const addr = rest.server.address();
      restPort = typeof addr === "object" && addr ? addr.port : config.restPort;
      closers.push(() => rest!.close());
    }
    if (config.frontends.includes("grpc")) {
      const { startGrpcServer } = await import("../adapters/grpc/grpc-server.js");
      const g = await startGrpcServer(a);
      grpcPort = g.port;
      closers.push(() => g.close());
    }
  } catch (e) {
    for (const c of closers.reverse()) await c().catch(() => {});
    await a.close();
    throw e;
  }
  const timer = setInterval(() => {
    compact(a.store, a.devices, a.clock.nowMs(), a.metrics, a.log).catch((e) => a.log.warn({ err: String(e) }, "compaction failed; will retry"));
  }, config.compactIntervalMs);
  timer.unref();
  const auth = config.authTokens.size > 0 ? "bearer tokens" : "off";
  a.log.info(
    { rest: restPort, grpc: grpcPort, host: config.host, kv: config.kvBackend, db: config.db, mode: config.mode, namespace: config.namespace, auth },
    auth === "off" ? "identity-map listening; auth is off (no IDMAP_AUTH_TOKENS), so it binds to loopback unless IDMAP_HOST says otherwise" : "identity-map listening",
  );
  return {
    app: a,
    ...(rest ? { rest } : {}),
    ...(restPort !== undefined ? { restPort } : {}),
    ...(grpcPort !== undefined ? { grpcPort } : {}),
    async close() {
      clearInterval(timer);
      for (const c of closers.reverse()) await c().catch(() => {});
      await a.close();
    },
  };
}
