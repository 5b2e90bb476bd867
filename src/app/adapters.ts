import { join } from "node:path";
import { SqlDeviceStore } from "../adapters/db/sql-device-store.js";
import { openSqliteHandles } from "../adapters/db/sqlite.js";
import { openEmbeddedKv } from "../adapters/kv/embedded-kv.js";
import { MemoryKv } from "../adapters/kv/memory-kv.js";
import type { DeviceStore, IdentityKv } from "../ports/index.js";
import type { Config } from "./config.js";
import { type Logger, silentLogger } from "../ports/logger.js";

/** Picks the KV adapter named by IDMAP_KV_BACKEND. The switch is exhaustive: a new backend must be added here. */
export async function openKv(config: Config, log: Logger): Promise<IdentityKv> {
  const backend = config.kvBackend;
  switch (backend) {
    case "memory":
      return new MemoryKv();
    case "embedded": {
      const { kv, db } = await openEmbeddedKv(config.dataDir, config.embeddedSync);
      const close = kv.close.bind(kv);
      kv.close = async () => {
        await close();
        await db.destroy();
      };
      return kv;
    }
    case "jetstream": {
      const { JetStreamKv } = await import("../adapters/kv/jetstream-kv.js");
      return JetStreamKv.open({
        servers: config.natsUrl,
        bucket: config.kvBucket,
        replicas: config.kvReplicas,
        history: config.kvHistory,
        maxBytes: config.kvMaxBytes,
        timeoutMs: config.requestTimeoutMs,
        log,
      });
    }
    case "etcd": {
      const { EtcdKv } = await import("../adapters/kv/etcd-kv.js");
      return EtcdKv.open({
        endpoints: config.etcdEndpoints,
        keyPrefix: `${config.kvBucket}/`,
        timeoutMs: config.requestTimeoutMs,
        log,
      });
    }
    case "redis": {
      const { RedisKv } = await import("../adapters/kv/redis-kv.js");
      return RedisKv.open({
        url: config.redisUrl,
        keyPrefix: `${config.kvBucket}:`,
        timeoutMs: config.requestTimeoutMs,
        log,
      });
    }
    default: {
      const never: never = backend;
      throw new Error(`unknown KV backend ${String(never)}`);
    }
  }
}

/** Picks the relational adapter named by IDMAP_DB and brings its schema up to date. */
export async function openDeviceStore(config: Config, log: Logger = silentLogger): Promise<DeviceStore> {
  const dialect = config.db;
  let store: DeviceStore;
  switch (dialect) {
    case "sqlite": {
      const { db, raw } = openSqliteHandles(
        config.dataDir === ":memory:" ? ":memory:" : join(config.dataDir, "devices.sqlite"),
        config.embeddedSync,
      );
      store = new SqlDeviceStore(db, "sqlite", raw);
      break;
    }
    case "postgres": {
      // Loaded only when configured (like the KV clients): pg is not part of an embedded start.
      const { openPostgres } = await import("../adapters/db/postgres.js");
      store = new SqlDeviceStore(openPostgres(config.databaseUrl, log), "postgres");
      break;
    }
    default: {
      const never: never = dialect;
      throw new Error(`unknown database ${String(never)}`);
    }
  }
  await store.migrate();
  return store;
}
