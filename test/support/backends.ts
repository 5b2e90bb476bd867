import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { randomUUID } from "node:crypto";
import { describe, it } from "vitest";

/**
 * Which backends the suites run on: `IDMAP_TEST_BACKENDS`, a comma list (default: all of them).
 * A selected backend always runs, so an unreachable server fails its suite loudly; a backend left
 * out of the list is reported as skipped by configuration, never silently.
 */
export const TEST_BACKENDS = ["memory", "embedded", "jetstream", "etcd", "redis", "sqlite", "postgres"] as const;
export type TestBackend = (typeof TEST_BACKENDS)[number];

export function selectedBackends(env: NodeJS.ProcessEnv = process.env): ReadonlySet<TestBackend> {
  const raw = env.IDMAP_TEST_BACKENDS?.trim();
  if (!raw) return new Set(TEST_BACKENDS);
  const names = raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!(TEST_BACKENDS as readonly string[]).includes(n)) {
      throw new Error(
        `IDMAP_TEST_BACKENDS: unknown backend ${JSON.stringify(n)} (expected some of ${TEST_BACKENDS.join(", ")})`,
      );
    }
  }
  return new Set(names as TestBackend[]);
}

/** Registers the suites of `backend` when it is selected; otherwise one skipped entry says why. */
export function forBackend(backend: TestBackend, register: () => void): void {
  if (selectedBackends().has(backend)) {
    register();
    return;
  }
  describe.skip(`${backend} (not in IDMAP_TEST_BACKENDS)`, () => {
    it("is not configured for this run", () => {});
  });
}

/** Where the test servers listen (scripts/start-servers.sh starts them on these defaults). */
export const testServers = {
  natsUrl: process.env.IDMAP_TEST_NATS_URL ?? "nats://127.0.0.1:4222",
  etcdEndpoints: (process.env.IDMAP_TEST_ETCD_ENDPOINTS ?? "http://127.0.0.1:2379").split(","),
  redisUrl: process.env.IDMAP_TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
  /** A database the tests may connect to in order to create and drop their own. */
  postgresAdminUrl: process.env.IDMAP_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test",
} as const;

/** A name no other run uses: buckets, key prefixes and databases are per run, servers are shared. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomUUID().replace(/-/g, "").slice(0, 16)}`;
}

/** The contract suite's factory for an adapter that can drop what it created (`destroy()`) before closing. */
export function destroyAfter<K extends IdentityKv & { destroy(): Promise<void> }>(
  open: () => Promise<K>,
): () => Promise<{ kv: K; cleanup(): Promise<void> }> {
  return async () => {
    const kv = await open();
    return {
      kv,
      cleanup: async () => {
        await kv.destroy();
        await kv.close();
      },
    };
  };
}
