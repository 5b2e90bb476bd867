import { describe, expect, it } from "vitest";
import { RedisKv } from "../../src/adapters/kv/redis-kv.js";
import { KvUnavailable } from "../../src/domain/errors.js";
import { kvContract, waitFor } from "../contract/kv.contract.js";
import { destroyAfter, forBackend, testServers, uniqueName } from "../support/backends.js";

forBackend("redis", () => {
  const keyPrefix = `${uniqueName("idmap_test")}:`;
  const open = () => RedisKv.open({ url: testServers.redisUrl, keyPrefix, timeoutMs: 5_000 });
  /** A store of its own for one test. */
  const fresh = (changeLogMaxLen?: number) =>
    RedisKv.open({
      url: testServers.redisUrl,
      keyPrefix: `${uniqueName("idmap_test")}:`,
      timeoutMs: 5_000,
      ...(changeLogMaxLen ? { changeLogMaxLen } : {}),
    });
  kvContract("redis", destroyAfter(open), { secondClient: () => open() });

  describe("redis specifics", () => {
    it("expires keys written with ttlMs; an update without it keeps the key", async () => {
      const kv = await fresh();
      try {
        await kv.create("ttl/a", new Uint8Array([1]), { ttlMs: 150 });
        const r = await kv.create("ttl/b", new Uint8Array([1]), { ttlMs: 150 });
        await kv.update("ttl/b", new Uint8Array([2]), r);
        await new Promise((res) => setTimeout(res, 400));
        expect(await kv.get("ttl/a")).toBeNull();
        expect(await kv.get("ttl/b")).not.toBeNull();
        await kv.create("ttl/a", new Uint8Array([3]));
      } finally {
        await kv.destroy();
        await kv.close();
      }
    });

    it("ends a watch that resumes from a trimmed revision through onError", async () => {
      const kv = await fresh(10);
      try {
        const first = await kv.create("trim/0", new Uint8Array([0]));
        for (let i = 1; i < 300; i++) await kv.create(`trim/${i}`, new Uint8Array([0]));
        const errors: Error[] = [];
        const h = await kv.watch(
          "trim/",
          first - 1,
          () => {},
          (e) => errors.push(e),
        );
        await waitFor(() => errors.length > 0, 2_000);
        expect(errors[0]).toBeInstanceOf(KvUnavailable);
        await h.stop();
      } finally {
        await kv.destroy();
        await kv.close();
      }
    });

    it("reports an unreachable server as KvUnavailable", async () => {
      await expect(RedisKv.open({ url: "redis://127.0.0.1:1", keyPrefix, timeoutMs: 2_000 })).rejects.toBeInstanceOf(
        KvUnavailable,
      );
    });
  });
});
