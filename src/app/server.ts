import type { FastifyInstance } from "fastify";
import { buildRestApp } from "../adapters/rest/rest-app.js";
import { assertSafeExposure } from "./auth.js";
import { compact } from "./bindings/compaction.js";
import { streamSettings } from "./changes/stream-settings.js";
import { startWebhooks } from "./changes/webhooks.js";
import type { Config } from "./config.js";
import { createApp, type App } from "./container.js";
import { loadTls } from "./tls.js";

export interface RunningServer {
  readonly app: App;
  readonly rest?: FastifyInstance;
  readonly restPort?: number;
  readonly grpcPort?: number;
  close(): Promise<void>;
}

/** Starts the front-ends named in IDMAP_FRONTENDS and the compaction schedule. */
export async function startServer(config: Config, app?: App): Promise<RunningServer> {
  // Refuse an open non-loopback listener and unreadable certificates before opening any store.
  assertSafeExposure(config);
  const tls = loadTls(config);
  const a = app ?? (await createApp(config));
  const authenticator = a.authenticator;
  const closers: (() => Promise<void>)[] = [];
  let rest: FastifyInstance | undefined;
  let restPort: number | undefined;
  let grpcPort: number | undefined;
  try {
    if (config.frontends.includes("rest")) {
      rest = await buildRestApp(a, {
        authorize: (req, need) =>
          authenticator.authorize({ authorization: req.headers.authorization, transport: "rest", peer: req.ip }, need),
        ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
      });
      await rest.listen({ host: config.host, port: config.restPort });
      const addr = rest.server.address();
      restPort = typeof addr === "object" && addr ? addr.port : config.restPort;
      closers.push(() => rest!.close());
    }
    if (config.frontends.includes("grpc")) {
      const { startGrpcServer } = await import("../adapters/grpc/grpc-server.js");
      const g = await startGrpcServer(a, { authenticator, tls });
      grpcPort = g.port;
      closers.push(() => g.close());
    }
  } catch (e) {
    for (const c of closers.reverse()) await c().catch(() => {});
    await a.close();
    throw e;
  }
  const timer = setInterval(() => {
    compact(a.store, a.devices, a.clock.nowMs(), a.metrics, a.log).catch((e) =>
      a.log.warn({ err: String(e) }, "compaction failed; will retry"),
    );
  }, config.compactIntervalMs);
  timer.unref();
  // Webhooks (issue 15): only a serving instance posts them.
  const webhooks = startWebhooks(a, streamSettings(config).webhooks);
  const auth = authenticator.describe();
  const transport = tls ? (tls.ca ? "tls (grpc: mtls)" : "tls") : "plaintext";
  a.log.info(
    {
      rest: restPort,
      grpc: grpcPort,
      host: config.host,
      kv: config.kvBackend,
      db: config.db,
      mode: config.mode,
      namespace: config.namespace,
      auth,
      transport,
    },
    auth === "off"
      ? "identity-map listening; auth is off (no IDMAP_AUTH_TOKENS or IDMAP_MTLS_ROLES): every caller may publish, " +
          "so it listens on loopback unless IDMAP_ALLOW_UNAUTHENTICATED=true"
      : "identity-map listening",
  );
  return {
    app: a,
    ...(rest ? { rest } : {}),
    ...(restPort !== undefined ? { restPort } : {}),
    ...(grpcPort !== undefined ? { grpcPort } : {}),
    async close() {
      clearInterval(timer);
      await webhooks?.stop();
      for (const c of closers.reverse()) await c().catch(() => {});
      await a.close();
    },
  };
}
