import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe } from "vitest";
import { openEmbeddedKv } from "../../src/adapters/kv/embedded-kv.js";
import { EtcdKv } from "../../src/adapters/kv/etcd-kv.js";
import { JetStreamKv } from "../../src/adapters/kv/jetstream-kv.js";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { RedisKv } from "../../src/adapters/kv/redis-kv.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { type AmbiguityBackend, ambiguityDrills } from "../support/ambiguity.js";
import { destroyAfter, forBackend, type TestBackend, testServers, uniqueName } from "../support/backends.js";
import { consistencySuite, memoryPair, type PairFactory, serverPair } from "../support/consistency.js";
import { weakKeyExpirySuite } from "../support/expiry.js";
import { hostileKeysSuite } from "../support/hostile.js";
import { quarantineSuite } from "../support/quarantine.js";
import { etcdServer, natsServer, redisServer } from "../support/servers.js";
import { backendEnv } from "../support/service.js";
import { etcdWriteLog, jetstreamWriteLog, redisWriteLog } from "../support/write-log.js";
import { etcdSpecifics, jetstreamSpecifics, redisSpecifics } from "./kv-specifics.js";
import { type KvUnderTest, kvContract, type ScanPaging } from "./kv.contract.js";

/**
 * The IdentityKv port on every backend: one table says what differs between them, and the loop at the
 * end registers, per backend, the suites it runs. A backend's differences are options of its entry,
 * never an `if (backend === ...)` in a suite.
 */
interface KvBackend {
  readonly backend: Exclude<TestBackend, "sqlite" | "postgres">;
  /** The contract suite's title. */
  readonly title: string;
  /** Opens the contract's store (one of this run's own) and says how to remove it after the suite. */
  readonly open: () => Promise<KvUnderTest>;
  /** How its scan pages: a page-size limit or hint, read on demand, pinned to a revision or pushed ahead. */
  readonly scan: ScanPaging;
  /** Another client on the contract's store, where the backend has several (watch across clients). */
  readonly secondClient?: (first: IdentityKv) => Promise<IdentityKv>;
  /** Removes what a service stored on a shared server (a bucket or key prefix of its own) before it closes. */
  readonly destroy?: (kv: IdentityKv) => Promise<void>;
  /** The service's environment for this backend (`backendEnv`): every call names another store. */
  readonly env: () => Record<string, string>;
  /** Two service instances on one store, for the consistency suite (test/support/consistency.ts). */
  readonly consistencyPair?: PairFactory;
  /** Two service instances on one store, for the shared-MAC suite (test/support/quarantine.ts). */
  readonly quarantinePair?: PairFactory;
  /**
   * How the weak-key expiry suite (test/support/expiry.ts) runs `idmap compact`: as the CLI child, or
   * in-process where the store is the process's own (memory).
   */
  readonly compactWith: "cli" | "in-process";
  /** The private server, service settings and write log of the ambiguous-writes drill (test/support/ambiguity.ts). */
  readonly ambiguity?: Omit<AmbiguityBackend, "name">;
  /** Tests only this backend has (kv-specifics.ts). */
  readonly specifics?: () => void;
}

/** The embedded contract's data directory, made on first use and removed by the suite's cleanup. */
let embeddedDir: string | undefined;
const embeddedDirectory = () => (embeddedDir ??= mkdtempSync(join(tmpdir(), "idmap-embedded-")));

// The contract's stores on the shared servers: a bucket or key prefix of this run's own; every call opens
// another client on it.
const contractBucket = uniqueName("idmap_test");
const etcdPrefix = `${uniqueName("idmap_test")}/`;
const redisPrefix = `${uniqueName("idmap_test")}:`;
const jetstream = () => JetStreamKv.open({ servers: testServers.natsUrl, bucket: contractBucket, timeoutMs: 5_000 });
const etcd = () => EtcdKv.open({ endpoints: testServers.etcdEndpoints, keyPrefix: etcdPrefix, timeoutMs: 5_000 });
const redis = () => RedisKv.open({ url: testServers.redisUrl, keyPrefix: redisPrefix, timeoutMs: 5_000 });

const destroyJetStream = (kv: IdentityKv) => (kv as JetStreamKv).destroy();
const destroyEtcd = (kv: IdentityKv) => (kv as EtcdKv).destroy();
const destroyRedis = (kv: IdentityKv) => (kv as RedisKv).destroy();

const KV_BACKENDS: readonly KvBackend[] = [
  {
    backend: "memory",
    title: "memory",
    scan: { pageSize: "limit", reads: "on-demand" },
    open: async () => ({ kv: new MemoryKv(), cleanup: async () => {} }),
    env: () => backendEnv("memory"),
    consistencyPair: memoryPair,
    quarantinePair: memoryPair,
    compactWith: "in-process",
  },
  {
    backend: "embedded",
    title: "embedded (SQLite)",
    // Keyset pages on the key index, each read when asked for.
    scan: { pageSize: "limit", reads: "on-demand" },
    open: async () => {
      const dir = embeddedDirectory();
      const { kv, db } = await openEmbeddedKv(dir);
      return {
        kv,
        cleanup: async () => {
          await kv.close();
          await db.destroy();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
    // A second process-level client on the same file: watch must see writes it did not make itself.
    secondClient: async () => (await openEmbeddedKv(embeddedDirectory())).kv,
    // The service's embedded store lives in the suite's own data directory.
    env: () => backendEnv("embedded"),
    compactWith: "cli",
  },
  {
    backend: "jetstream",
    title: "jetstream (NATS KV)",
    // One consumer of every key's last message, which the server pushes ahead of the reader.
    scan: { pageSize: "limit", reads: "pushed" },
    open: destroyAfter(jetstream),
    secondClient: () => jetstream(),
    destroy: destroyJetStream,
    // The shared NATS server, on a bucket of this run's own, removed afterwards.
    env: () => backendEnv("jetstream"),
    quarantinePair: serverPair(backendEnv("jetstream"), destroyJetStream),
    compactWith: "cli",
    consistencyPair: serverPair(backendEnv("jetstream"), destroyJetStream),
    ambiguity: {
      startServer: () => natsServer(),
      // History 10: the bucket keeps every write of a key, so a double apply would show.
      env: (port, bucket) => ({
        IDMAP_KV_BACKEND: "jetstream",
        IDMAP_NATS_URL: `nats://127.0.0.1:${port}`,
        IDMAP_KV_BUCKET: bucket,
        IDMAP_KV_HISTORY: "10",
      }),
      writeLog: (server, bucket) => jetstreamWriteLog(`nats://127.0.0.1:${server.port}`, bucket),
    },
    specifics: jetstreamSpecifics,
  },
  {
    backend: "etcd",
    title: "etcd",
    // Every page a range read at the first page's revision.
    scan: { pageSize: "limit", reads: "pinned" },
    open: destroyAfter(etcd),
    secondClient: () => etcd(),
    destroy: destroyEtcd,
    // The shared server, on a key prefix of this run's own, removed afterwards.
    env: () => backendEnv("etcd"),
    quarantinePair: serverPair(backendEnv("etcd"), destroyEtcd),
    compactWith: "cli",
    ambiguity: {
      startServer: () => etcdServer(),
      env: (port, bucket) => ({
        IDMAP_KV_BACKEND: "etcd",
        IDMAP_ETCD_ENDPOINTS: `http://127.0.0.1:${port}`,
        IDMAP_KV_BUCKET: bucket,
      }),
      writeLog: (server, bucket) => etcdWriteLog(`http://127.0.0.1:${server.port}`, `${bucket}/`),
    },
    specifics: etcdSpecifics,
  },
  {
    backend: "redis",
    title: "redis",
    // SCAN batches (COUNT is a hint), each read in one pipeline when asked for.
    scan: { pageSize: "hint", reads: "on-demand" },
    open: destroyAfter(redis),
    secondClient: () => redis(),
    destroy: destroyRedis,
    // The shared Redis, on a key prefix of this run's own, removed afterwards.
    env: () => backendEnv("redis"),
    quarantinePair: serverPair(backendEnv("redis"), destroyRedis),
    compactWith: "cli",
    consistencyPair: serverPair(backendEnv("redis"), destroyRedis),
    ambiguity: {
      startServer: () => redisServer(true),
      env: (port, bucket) => ({
        IDMAP_KV_BACKEND: "redis",
        IDMAP_REDIS_URL: `redis://127.0.0.1:${port}`,
        IDMAP_KV_BUCKET: bucket,
      }),
      writeLog: (server, bucket) => redisWriteLog(`redis://127.0.0.1:${server.port}`, `${bucket}:`),
    },
    specifics: redisSpecifics,
  },
];

for (const b of KV_BACKENDS) {
  forBackend(b.backend, () => {
    describe(b.backend, () => {
      kvContract(b.title, b.open, { secondClient: b.secondClient, scan: b.scan });
      b.specifics?.();
      hostileKeysSuite({ name: b.backend, env: b.env(), destroy: b.destroy });
      weakKeyExpirySuite({ name: b.backend, env: b.env(), compactWith: b.compactWith, destroy: b.destroy });
      if (b.quarantinePair) quarantineSuite(b.backend, b.quarantinePair);
      if (b.consistencyPair) consistencySuite(b.backend, b.consistencyPair);
      if (b.ambiguity) ambiguityDrills({ name: b.backend, ...b.ambiguity });
    });
  });
}
