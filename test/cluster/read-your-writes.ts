import { describe, expect, it } from "vitest";
import { uniqueName } from "../support/backends.js";
import { CLUSTERS, leaderOf, node, openClusterKv, restoreCluster, type ClusterKind } from "../support/cluster.js";
import { report } from "../support/outage.js";

const enc = (s: string) => new TextEncoder().encode(s);

/**
 * A follower left behind (paused while the others take writes), then continued: a client that
 * reaches every node, that follower included, writes and reads back at once while it catches up. Every read must show at
 * least the revision the same client just wrote: reads are served by the leader (JetStream) or are
 * linearizable (etcd), never from the follower's own, older copy.
 */
export function readYourWritesOnALaggingFollower(kind: ClusterKind): void {
  describe(`${kind} cluster: a lagging follower`, () => {
    it("never answers a client older than the revision that client just wrote", async () => {
      const name = uniqueName("idmap_ctest");
      const writer = await openClusterKv(kind, name);
      await seed(writer);
      const leader = await leaderOf(kind, name);
      const follower = CLUSTERS[kind].find((n) => n.name !== leader)!;
      const others = CLUSTERS[kind].filter((n) => n !== follower);
      const busy = await openClusterKv(kind, name, others);
      // The client knows every node and spreads its calls over them (etcd3 picks a member per call),
      // so its reads land on the lagging follower too, not only its writes.
      const client = await openClusterKv(kind, name);
      let checks = 0;
      let stale = 0;
      try {
        const revs = new Map<string, number>();
        for (let i = 0; i < 20; i++) revs.set(`k${i}`, (await client.get(`k${i}`))!.revision);
        await node.pause(follower.name);
        // The others move on without it: a few thousand writes it will have to catch up on.
        const until = performance.now() + 2_000;
        for (let n = 0; performance.now() < until; n++) {
          await Promise.all(Array.from({ length: 32 }, (_, j) => busy.create(`bulk/${n}/${j}`, enc("x"))));
        }
        for (const [k, r] of revs) revs.set(k, await busy.update(k, enc("moved on"), r));
        await node.resume(follower.name);
        const end = performance.now() + 4_000;
        for (let round = 0; performance.now() < end; round++) {
          const k = `k${round % 20}`;
          const wrote = await client.update(k, enc(`round ${round}`), revs.get(k)!);
          revs.set(k, wrote);
          const read = await client.get(k);
          checks++;
          if (!read || read.revision < wrote) stale++;
          const many = await client.getMany([k]);
          if (!many[0] || many[0].revision < wrote) stale++;
        }
        report(`${kind}-cluster lagging follower`, { follower: follower.name, checks, stale });
        expect(checks).toBeGreaterThan(20);
        expect(stale).toBe(0);
      } finally {
        await node.resume(follower.name).catch(() => {});
        await client.close();
        await busy.close();
        await writer.destroy();
        await writer.close();
        await restoreCluster();
      }
    }, 120_000);
  });
}

async function seed(kv: { create(k: string, v: Uint8Array): Promise<number> }): Promise<void> {
  for (let i = 0; i < 20; i++) await kv.create(`k${i}`, enc("0"));
}
