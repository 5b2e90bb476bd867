import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import { openKv } from "../../src/app/adapters.js";
import { decodeBinding } from "../../src/app/bindings/binding-store.js";
import { loadConfig, type Config } from "../../src/app/config.js";
import { createApp, type App, type AppOverrides } from "../../src/app/container.js";
import { silentLogger } from "../../src/app/logger.js";
import type { Binding } from "../../src/domain/binding.js";
import type { IdentityKey } from "../../src/domain/identity-key.js";
import { keyPath } from "../../src/domain/key-path.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { testServers, uniqueName } from "./backends.js";

/**
 * A service instance as the failure tests drive it: createApp + buildRestApp (inject, no listener),
 * flag on, on the KV named by `env`, with its relational store in a directory of its own.
 */
export interface Service {
  readonly app: App;
  readonly rest: FastifyInstance;
  readonly config: Config;
  close(): Promise<void>;
}

export type ServerBackend = "jetstream" | "etcd" | "redis";

/** Environment for a backend on the given server (a private one, or the shared one by default), with a store of its own. */
export function backendEnv(backend: ServerBackend | "memory" | "embedded", server?: string): Record<string, string> {
  const bucket = uniqueName("idmap_fail");
  switch (backend) {
    case "jetstream":
      return { IDMAP_KV_BACKEND: backend, IDMAP_NATS_URL: server ?? testServers.natsUrl, IDMAP_KV_BUCKET: bucket };
    case "etcd":
      return {
        IDMAP_KV_BACKEND: backend,
        IDMAP_ETCD_ENDPOINTS: server ?? testServers.etcdEndpoints.join(","),
        IDMAP_KV_BUCKET: bucket,
      };
    case "redis":
      return { IDMAP_KV_BACKEND: backend, IDMAP_REDIS_URL: server ?? testServers.redisUrl, IDMAP_KV_BUCKET: bucket };
    case "memory":
    case "embedded":
      return { IDMAP_KV_BACKEND: backend };
  }
}

export function tempDir(name: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `idmap-${name}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function serviceConfig(env: Record<string, string>, dataDir: string): Config {
  return loadConfig({
    IDMAP_DATA_DIR: dataDir,
    IDMAP_LOG_LEVEL: "silent",
    CANONICAL_IDENTITY_MAP_ENABLED: "on",
    IDMAP_REQUEST_TIMEOUT: "2s",
    IDMAP_EMBEDDED_SYNC: "full",
    ...env,
  });
}

export async function startService(config: Config, overrides: AppOverrides = {}): Promise<Service> {
  const app = await createApp(config, { logger: silentLogger, ...overrides });
  const rest = await buildRestApp(app);
  return {
    app,
    rest,
    config,
    async close() {
      await rest.close();
      await app.close();
    },
  };
}

/**
 * Two service instances on one memory store, each through the KV it is given (`sharedKv(kv)`, or
 * that wrapped in a gate or a lagging watch to force an interleaving), with one config.
 */
export async function twoOnOneStore(
  forX: IdentityKv,
  forY: IdentityKv,
): Promise<{ config: Config; x: Service; y: Service }> {
  const config = serviceConfig({ IDMAP_KV_BACKEND: "memory" }, ":memory:");
  const x = await startService(config, { kv: forX });
  const y = await startService(config, { kv: forY });
  return { config, x, y };
}

/** A second client on the service's store, with no cache: what the KV itself holds. */
export async function directKv(config: Config): Promise<IdentityKv> {
  return openKv(config, silentLogger);
}

/** The binding of `key` as the KV holds it now (no cache), or null. */
export async function readBinding(kv: IdentityKv, namespace: string, key: IdentityKey): Promise<Binding | null> {
  const e = await kv.get(keyPath(namespace, key));
  return e ? decodeBinding(e.value, e.revision) : null;
}

/** Wraps a KV so that closing the wrapper leaves the shared one open (a second service on the same connection). */
export function sharedKv(kv: IdentityKv): IdentityKv {
  return new Proxy(kv, {
    get(target, prop, receiver) {
      if (prop === "close") return async () => {};
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/** The value of one counter series of the app's registry (0 when the series does not exist). */
export async function counterValue(app: App, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = app.metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((v) =>
      Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want),
    )
    .reduce((s, v) => s + v.value, 0);
}

export interface Timed<T> {
  readonly status: number;
  readonly body: T;
  readonly ms: number;
}

/** POST /v1/device-updates through inject, timed. */
export async function postUpdates(rest: FastifyInstance, updates: readonly object[]): Promise<Timed<any>> {
  const start = performance.now();
  const r = await rest.inject({ method: "POST", url: "/v1/device-updates", payload: { updates } });
  return { status: r.statusCode, body: r.json(), ms: performance.now() - start };
}

/** GET /v1/canonical-devices/lookup?... through inject, timed. */
export async function getLookup(rest: FastifyInstance, query: Record<string, string>): Promise<Timed<any>> {
  const start = performance.now();
  const r = await rest.inject({ method: "GET", url: "/v1/canonical-devices/lookup", query });
  return { status: r.statusCode, body: r.json(), ms: performance.now() - start };
}
