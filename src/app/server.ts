import type { FastifyInstance } from "fastify";
import { buildRestApp } from "../adapters/rest/rest-app.js";
import { buildStartingRestApp } from "../adapters/rest/starting-app.js";
import { DbUnavailable, KvUnavailable } from "../domain/errors.js";
import { assertSafeExposure } from "./auth.js";
import { compact } from "./bindings/compaction.js";
import { streamSettings } from "./changes/stream-settings.js";
import { startWebhooks } from "./changes/webhooks.js";
import { recoverAudit } from "./publish/audit-recovery.js";
import type { Config } from "./config.js";
import { createApp, type App } from "./container.js";
import { appLogger } from "./logger.js";
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
  // The audit trail's retention (IDMAP_AUDIT_RETENTION): history and as-of lookups reach that far back.
  const prune = setInterval(() => {
    a.devices
      .pruneAudit(a.clock.nowMs() - config.auditRetentionMs)
      .catch((e) => a.log.warn({ err: String(e) }, "audit retention prune failed; will retry"));
  }, config.compactIntervalMs);
  prune.unref();
  // Webhooks (issue 15): only a serving instance posts them.
  const webhooks = startWebhooks(a, streamSettings(config).webhooks);
  // Audit rows a crash or a database failure kept from being written, recovered from the journal.
  const recovery = setInterval(
    () => {
      recoverAudit({
        store: a.store,
        devices: a.devices,
        log: a.log,
        nowMs: a.clock.nowMs(),
        minAgeMs: config.auditRecoveryAgeMs,
      }).catch((e) => a.log.warn({ err: String(e) }, "audit recovery failed; will retry"));
    },
    Math.max(250, config.auditRecoveryAgeMs / 2),
  );
  recovery.unref();
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
      clearInterval(prune);
      await webhooks?.stop();
      clearInterval(recovery);
      for (const c of closers.reverse()) await c().catch(() => {});
      await a.close();
    },
  };
}

/** A service started by `serve`: ready now, or once its stores answer. */
export interface Serving {
  /** Resolves with the running server once the stores answered (immediately when they did at once). */
  readonly ready: Promise<RunningServer>;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** Delay before retry `attempt` (1-based); 1 s doubling to 30 s by default. */
  readonly retryDelayMs?: (attempt: number) => number;
  /** Opens the app (tests count attempts through it); createApp by default. */
  readonly open?: (config: Config) => Promise<App>;
}

const defaultRetryDelay = (attempt: number) => Math.min(30_000, 1_000 * 2 ** Math.min(attempt - 1, 5));

/**
 * `idmap serve`: starts the service, and when its KV or database does not answer at start, starts
 * unready instead of exiting (defect 7 of issue 12): REST answers 503 (`/healthz` 200, `/readyz` 503), gRPC
 * does not listen yet (clients see UNAVAILABLE), and opening the stores is retried with backoff until they
 * answer; then the full service takes over the same ports. Any other start error (configuration,
 * certificates, a port in use) still ends the process.
 */
export async function serve(config: Config, options: ServeOptions = {}): Promise<Serving> {
  assertSafeExposure(config);
  const tls = loadTls(config);
  const open = options.open ?? ((c: Config) => createApp(c));
  const delay = options.retryDelayMs ?? defaultRetryDelay;
  const retryable = (e: unknown) => e instanceof KvUnavailable || e instanceof DbUnavailable;
  let first: App;
  try {
    first = await open(config);
  } catch (e) {
    if (!retryable(e)) throw e;
    return serveWhenReachable(config, e as KvUnavailable | DbUnavailable, { open, delay, tls: !!tls });
  }
  const server = await startServer(config, first);
  return { ready: Promise.resolve(server), close: () => server.close() };
}

async function serveWhenReachable(
  config: Config,
  firstError: KvUnavailable | DbUnavailable,
  o: { open: (c: Config) => Promise<App>; delay: (attempt: number) => number; tls: boolean },
): Promise<Serving> {
  const log = appLogger(config);
  let last: KvUnavailable | DbUnavailable = firstError;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  let placeholder: Awaited<ReturnType<typeof buildStartingRestApp>> | undefined;
  let running: RunningServer | undefined;
  const state = {
    mode: config.mode,
    current: () => ({
      kv: !(last instanceof KvUnavailable),
      db: !(last instanceof DbUnavailable),
      code: last.code,
      message: `${last.message}; retrying`,
    }),
  };
  if (config.frontends.includes("rest")) {
    const tls = o.tls ? loadTls(config) : undefined;
    placeholder = await buildStartingRestApp(state, tls ? { https: { cert: tls.cert, key: tls.key } } : {});
    await placeholder.listen({ host: config.host, port: config.restPort });
  }
  const ready = (async (): Promise<RunningServer> => {
    for (let attempt = 1; ; attempt++) {
      const wait = o.delay(attempt);
      log.warn(
        { err: last.message, code: last.code, attempt, retryInMs: wait },
        "stores not reachable at start; unready",
      );
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, wait);
      });
      if (closed) throw new Error("closed before the stores answered");
      try {
        const app = await o.open(config);
        if (closed) {
          await app.close();
          throw new Error("closed before the stores answered");
        }
        await placeholder?.close();
        placeholder = undefined;
        running = await startServer(config, app);
        log.info({ attempts: attempt + 1 }, "stores reachable: ready");
        return running;
      } catch (e) {
        if (!(e instanceof KvUnavailable || e instanceof DbUnavailable)) throw e;
        last = e;
      }
    }
  })();
  ready.catch(() => {});
  return {
    ready,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      wake?.();
      await placeholder?.close();
      await ready.then(
        (r) => r.close(),
        () => {},
      );
    },
  };
}
