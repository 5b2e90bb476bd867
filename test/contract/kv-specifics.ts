import { describe, expect, it } from "vitest";
import { EtcdKv } from "../../src/adapters/kv/etcd-kv.js";
import { JetStreamKv, MAX_NATS_KEY_BYTES } from "../../src/adapters/kv/jetstream-kv.js";
import { RedisKv } from "../../src/adapters/kv/redis-kv.js";
import { InvalidArgument, KvUnavailable } from "../../src/domain/errors.js";
import type { KvChange } from "../../src/ports/identity-kv.js";
import { testServers, uniqueName } from "../support/backends.js";
import { waitFor } from "./kv.contract.js";

/**
 * What one KV backend does that the others do not: its leases and change logs, the keys its server
 * cannot hold, how it reports a server that does not answer. Each function registers one backend's
 * tests; the backend table in identity-kv.test.ts names it as that backend's `specifics`.
 */

export function etcdSpecifics(): void {
  const keyPrefix = `${uniqueName("idmap_test")}/`;

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
}

export function jetstreamSpecifics(): void {
  const bucket = uniqueName("idmap_test");

  describe("jetstream specifics", () => {
    it("refuses keys NATS cannot hold before calling the server", async () => {
      const kv = await JetStreamKv.open({
        servers: testServers.natsUrl,
        bucket: uniqueName("idmap_test"),
        timeoutMs: 5_000,
      });
      try {
        for (const key of ["a..b", ".a", "a.", "a:b", "a b", "", "a*", "a>"]) {
          await expect(kv.get(key), key).rejects.toBeInstanceOf(InvalidArgument);
          await expect(kv.create(key, new Uint8Array([1])), key).rejects.toBeInstanceOf(InvalidArgument);
        }
        await expect(kv.getMany(["ok/key", "bad..key"])).rejects.toBeInstanceOf(InvalidArgument);
      } finally {
        await kv.destroy();
        await kv.close();
      }
    });

    it("reports an unreachable server as KvUnavailable", async () => {
      await expect(
        JetStreamKv.open({ servers: "nats://127.0.0.1:1", bucket, timeoutMs: 2_000 }),
      ).rejects.toBeInstanceOf(KvUnavailable);
    });
  });

  describe("jetstream adapter: keys NATS would drop the connection for", () => {
    it("refuses a key longer than the server's control line allows, and the connection stays up", async () => {
      const kv = await JetStreamKv.open({
        servers: testServers.natsUrl,
        bucket: uniqueName("idmap_hostile"),
        timeoutMs: 5_000,
      });
      try {
        const long = `ns/mac/${"=E8=AA=9E".repeat(1_000)}`;
        expect(long.length).toBeGreaterThan(MAX_NATS_KEY_BYTES);
        await expect(kv.get(long)).rejects.toBeInstanceOf(InvalidArgument);
        await expect(kv.getMany(["ok/key", long])).rejects.toBeInstanceOf(InvalidArgument);
        await expect(kv.create(long, new Uint8Array([1]))).rejects.toBeInstanceOf(InvalidArgument);
        const rev = await kv.create("ns/mac/still-connected", new Uint8Array([1]));
        expect((await kv.get("ns/mac/still-connected"))?.revision).toBe(rev);
      } finally {
        await kv.destroy();
        await kv.close();
      }
    });
  });
}

export function redisSpecifics(): void {
  const keyPrefix = `${uniqueName("idmap_test")}:`;
  /** A store of its own for one test. */
  const fresh = (changeLogMaxLen?: number) =>
    RedisKv.open({
      url: testServers.redisUrl,
      keyPrefix: `${uniqueName("idmap_test")}:`,
      timeoutMs: 5_000,
      ...(changeLogMaxLen ? { changeLogMaxLen } : {}),
    });

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
}
