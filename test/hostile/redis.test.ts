import type { RedisKv } from "../../src/adapters/kv/redis-kv.js";
import { forBackend } from "../support/backends.js";
import { hostileKeysSuite } from "../support/hostile.js";
import { backendEnv } from "../support/service.js";

// The shared server, on a store of this run's own, removed afterwards.
forBackend("redis", () =>
  hostileKeysSuite({ name: "redis", env: backendEnv("redis"), destroy: (kv) => (kv as RedisKv).destroy() }),
);
