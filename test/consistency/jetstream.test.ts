import type { JetStreamKv } from "../../src/adapters/kv/jetstream-kv.js";
import { forBackend } from "../support/backends.js";
import { consistencySuite, serverPair } from "../support/consistency.js";
import { backendEnv } from "../support/service.js";

// The shared NATS server, on a bucket of this run's own.
forBackend("jetstream", () => {
  consistencySuite(
    "jetstream",
    serverPair(backendEnv("jetstream"), (kv) => (kv as JetStreamKv).destroy()),
  );
});
