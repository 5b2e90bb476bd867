import type { RedisKv } from "../../src/adapters/kv/redis-kv.js";
import { forBackend } from "../support/backends.js";
import { consistencySuite, serverPair } from "../support/consistency.js";
import { backendEnv } from "../support/service.js";

// The shared Redis, on a store (key prefix) of this run's own.
forBackend("redis", () => {
  consistencySuite(
    "redis",
    serverPair(backendEnv("redis"), (kv) => (kv as RedisKv).destroy()),
  );
});
