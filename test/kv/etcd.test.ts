import { describe, expect, it } from "vitest";
import { EtcdKv } from "../../src/adapters/kv/etcd-kv.js";
import { KvUnavailable } from "../../src/domain/errors.js";
import type { KvChange } from "../../src/ports/identity-kv.js";
import { kvContract, waitFor } from "../contract/kv.contract.js";
import { destroyAfter, forBackend, testServers, uniqueName } from "../support/backends.js";

forBackend("etcd", () => {
  const keyPrefix = `${uniqueName("idmap_test")}/`;
  const open = () => EtcdKv.open({ endpoints: testServers.etcdEndpoints, keyPrefix, timeoutMs: 5_000 });
  kvContract("etcd", destroyAfter(open), { secondClient: () => open() });

  describe("etcd specifics", () => {
    it("expires keys written with ttlMs through a shared lease, and watches see the deletes", async () => {
      const kv = await EtcdKv.open({
        endpoints: testServers.etcdEndpoints,
        keyPrefix: `${uniqueName("idmap_test")}/`,
        timeoutMs: 5_000,
      });
      try {
        const seen: KvChange[] = [];
        const start = (await kv.list("ttl/")).revision;
        const h = await kv.watch(
          "ttl/",
          start,
          (c) => seen.push(c),
          () => {},
        );
        await kv.create("ttl/a", new Uint8Array([1]), { ttlMs: 1_000 });
        await kv.create("ttl/b", new Uint8Array([2]), { ttlMs: 1_000 });
        await kv.create("ttl/kept", new Uint8Array([3]));
        await waitFor(() => seen.filter((c) => c.value === null).length === 2, 8_000);
        expect(await kv.getMany(["ttl/a", "ttl/b"])).toEqual([null, null]);
        expect(await kv.get("ttl/kept")).not.toBeNull();
        await h.stop();
      } finally {
        await kv.destroy();
        await kv.close();
      }
    });

    it("reports an unreachable cluster as KvUnavailable", async () => {
      await expect(
        EtcdKv.open({ endpoints: ["http://127.0.0.1:1"], keyPrefix, timeoutMs: 2_000 }),
      ).rejects.toBeInstanceOf(KvUnavailable);
    });
  });
});
