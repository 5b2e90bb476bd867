import type { EtcdKv } from "../../src/adapters/kv/etcd-kv.js";
import type { JetStreamKv } from "../../src/adapters/kv/jetstream-kv.js";
import type { RedisKv } from "../../src/adapters/kv/redis-kv.js";
import { forBackend } from "../support/backends.js";
import { weakKeyExpirySuite } from "../support/expiry.js";
import { backendEnv } from "../support/service.js";

forBackend("memory", () =>
  weakKeyExpirySuite({ name: "memory", env: backendEnv("memory"), compactWith: "in-process" }),
);
forBackend("embedded", () => weakKeyExpirySuite({ name: "embedded", env: backendEnv("embedded"), compactWith: "cli" }));
forBackend("jetstream", () =>
  weakKeyExpirySuite({
    name: "jetstream",
    env: backendEnv("jetstream"),
    compactWith: "cli",
    destroy: (kv) => (kv as JetStreamKv).destroy(),
  }),
);
forBackend("etcd", () =>
  weakKeyExpirySuite({
    name: "etcd",
    env: backendEnv("etcd"),
    compactWith: "cli",
    destroy: (kv) => (kv as EtcdKv).destroy(),
  }),
);
forBackend("redis", () =>
  weakKeyExpirySuite({
    name: "redis",
    env: backendEnv("redis"),
    compactWith: "cli",
    destroy: (kv) => (kv as RedisKv).destroy(),
  }),
);
