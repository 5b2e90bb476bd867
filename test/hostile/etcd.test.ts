import type { EtcdKv } from "../../src/adapters/kv/etcd-kv.js";
import { forBackend } from "../support/backends.js";
import { hostileKeysSuite } from "../support/hostile.js";
import { backendEnv } from "../support/service.js";

// The shared server, on a store of this run's own, removed afterwards.
forBackend("etcd", () =>
  hostileKeysSuite({ name: "etcd", env: backendEnv("etcd"), destroy: (kv) => (kv as EtcdKv).destroy() }),
);
