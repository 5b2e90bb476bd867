import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const BACKENDS = ["embedded", "jetstream", "etcd", "redis", "memory"] as const;
export type BackendName = (typeof BACKENDS)[number];
export const FRONTENDS = ["rest", "grpc"] as const;
export type FrontendName = (typeof FRONTENDS)[number];

/** Where the shared servers listen (scripts/start-servers.sh starts them on these defaults). */
export interface Servers {
  readonly natsUrl: string;
  readonly etcdEndpoints: readonly string[];
  readonly redisUrl: string;
}

export function serversFromEnv(env: NodeJS.ProcessEnv = process.env): Servers {
  return {
    natsUrl: env.IDMAP_BENCH_NATS_URL ?? "nats://127.0.0.1:4222",
    etcdEndpoints: (env.IDMAP_BENCH_ETCD_ENDPOINTS ?? "http://127.0.0.1:2379").split(","),
    redisUrl: env.IDMAP_BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
  };
}

/** One service under test: its environment, and how to remove what it left on the shared servers. */
export interface ServiceSetup {
  readonly env: Record<string, string>;
  cleanup(): Promise<void>;
}

/**
 * The service as `idmap serve` runs it, the map on: both front-ends on free ports, a data directory
 * of its own (embedded KV, SQLite device store), and a bucket or key prefix no other run uses.
 */
export function serviceSetup(backend: BackendName, servers: Servers, name: string, logLevel: string): ServiceSetup {
  const dataDir = mkdtempSync(join(tmpdir(), "idmap-bench-svc-"));
  const bucket = `${name}_svc`;
  const env: Record<string, string> = {
    IDMAP_KV_BACKEND: backend,
    CANONICAL_IDENTITY_MAP_ENABLED: "on",
    IDMAP_FRONTENDS: "rest,grpc",
    IDMAP_HOST: "127.0.0.1",
    IDMAP_REST_PORT: "0",
    IDMAP_GRPC_PORT: "0",
    IDMAP_DATA_DIR: dataDir,
    IDMAP_DB: "sqlite",
    IDMAP_KV_BUCKET: bucket,
    IDMAP_NATS_URL: servers.natsUrl,
    IDMAP_ETCD_ENDPOINTS: servers.etcdEndpoints.join(","),
    IDMAP_REDIS_URL: servers.redisUrl,
    IDMAP_LOG_LEVEL: logLevel,
    IDMAP_AUTH_TOKENS: "",
  };
  return {
    env,
    async cleanup() {
      try {
        switch (backend) {
          case "jetstream": {
            const { JetStreamKv } = await import("../../src/adapters/kv/jetstream-kv.js");
            const kv = await JetStreamKv.open({ servers: servers.natsUrl, bucket });
            await kv.destroy();
            await kv.close();
            break;
          }
          case "etcd": {
            const { EtcdKv } = await import("../../src/adapters/kv/etcd-kv.js");
            const kv = await EtcdKv.open({ endpoints: [...servers.etcdEndpoints], keyPrefix: `${bucket}/` });
            await kv.destroy();
            await kv.close();
            break;
          }
          case "redis": {
            const { RedisKv } = await import("../../src/adapters/kv/redis-kv.js");
            const kv = await RedisKv.open({ url: servers.redisUrl, keyPrefix: `${bucket}:` });
            await kv.destroy();
            await kv.close();
            break;
          }
          case "embedded":
          case "memory":
            break;
        }
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}
