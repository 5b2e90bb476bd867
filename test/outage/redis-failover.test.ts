import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisKv } from "../../src/adapters/kv/redis-kv.js";
import { forBackend, uniqueName } from "../support/backends.js";
import { report } from "../support/outage.js";
import { redisServer, until, type PrivateServer } from "../support/servers.js";
import { TcpProxy } from "../support/tcp-proxy.js";

const enc = (s: string) => new TextEncoder().encode(s);
const WRITES = 50;

/**
 * What Redis replication does for this map (docs/deploy.md): a primary acknowledges a write before
 * any replica has it, so a failover to a replica that had not caught up loses acknowledged writes.
 * WAIT makes the shortfall visible to the writer, but cannot undo the write on the primary: it is
 * not consensus, which is why the adapter does not use it and clusters run on etcd instead.
 * Private servers on free ports; the replica follows the primary through a proxy that stops passing
 * the replication stream on cue, so the lag (a slow or partitioned link) is certain.
 */
forBackend("redis", () => {
  describe("redis primary and replica: a failover", () => {
    let primary: PrivateServer & { url: string };
    let replica: PrivateServer & { url: string };
    let link: TcpProxy;
    beforeAll(async () => {
      primary = await redisServer(true);
      link = await TcpProxy.start(primary.port);
      replica = await redisServer(true, ["--replicaof", "127.0.0.1", String(link.port)]);
      const r = new Redis(replica.url);
      await until(
        "the replica in sync",
        async () => (await r.info("replication")).includes("master_link_status:up"),
        20_000,
      );
      r.disconnect();
    });
    afterAll(async () => {
      await link?.close();
      await replica?.stop();
      await primary?.stop();
    });

    it("loses writes the primary acknowledged when the replica it fails over to lagged; WAIT only reports it", async () => {
      const prefix = `${uniqueName("idmap_failover")}:`;
      const kv = await RedisKv.open({ url: primary.url, keyPrefix: prefix, timeoutMs: 2_000 });
      const raw = new Redis(primary.url);
      try {
        const before = await kv.create("before", enc("replicated"));
        expect(before).toBeGreaterThan(0);
        await until(
          "the replica to hold the first write",
          async () => {
            const r = new Redis(replica.url);
            try {
              return (await r.keys(`${prefix}*`)).length > 0;
            } finally {
              r.disconnect();
            }
          },
          10_000,
        );

        // The replica acknowledges its offset every second: from its next REPLCONF ACK on, nothing
        // the primary sends reaches it.
        await link.loseReplyAfter("REPLCONF");
        for (let i = 0; i < WRITES; i++) await kv.create(`k${i}`, enc(String(i)));
        // What WAIT would tell a writer now (WAIT counts replicas holding the caller's own last
        // write): no replica has it (0 of 1), after its timeout.
        await raw.set(`${prefix}waited`, "x");
        const replicasThatHaveIt = Number(await raw.call("WAIT", "1", "200"));
        // ... and the write stays on the primary regardless: WAIT cannot take it back.
        const onPrimary = await raw.get(`${prefix}waited`);

        await primary.kill9();
        link.cut();
        const promoted = new Redis(replica.url);
        await promoted.call("REPLICAOF", "NO", "ONE");
        promoted.disconnect();
        const after = await RedisKv.open({ url: replica.url, keyPrefix: prefix, timeoutMs: 2_000 });
        const got = await after.getMany(Array.from({ length: WRITES }, (_, i) => `k${i}`));
        const lost = got.filter((e) => e === null).length;
        const kept = await after.get("before");
        await after.close();
        report("redis failover without WAIT", { acknowledged: WRITES, lost, waitReplicas: replicasThatHaveIt });

        expect(kept).not.toBeNull();
        expect(lost).toBe(WRITES);
        expect(replicasThatHaveIt).toBe(0);
        expect(onPrimary).not.toBeNull();
      } finally {
        raw.disconnect();
        await kv.close();
      }
    }, 60_000);
  });
});
