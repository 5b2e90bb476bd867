import { describe, expect, it } from "vitest";
import { RevisionConflict } from "../../src/domain/errors.js";
import { uniqueName } from "../support/backends.js";
import { CLUSTERS, leaderOf, node, openClusterKv, restoreCluster, type ClusterKind } from "../support/cluster.js";

const enc = (s: string) => new TextEncoder().encode(s);

/**
 * One follower down, the quorum intact: a client configured with all three members keeps working.
 * Every call must reach a live member, never fail because it picked the dead one.
 */
export function oneFollowerDown(kind: ClusterKind): void {
  describe(`${kind} cluster: one follower down`, () => {
    it("every call reaches a live member: no call fails while a majority answers", async () => {
      const name = uniqueName("idmap_ctest");
      const kv = await openClusterKv(kind, name);
      let failed = 0;
      try {
        let rev = await kv.create("k", enc("0"));
        const leader = await leaderOf(kind, name);
        await node.kill9(CLUSTERS[kind].find((n) => n.name !== leader)!.name);
        for (let i = 1; i <= 30; i++) {
          try {
            await kv.getMany([`absent${i}`, "k"]);
            await kv.create(`n${i}`, enc(String(i)));
            rev = await kv.update("k", enc(String(i)), rev);
          } catch (e) {
            if (e instanceof RevisionConflict) throw e;
            failed++;
          }
        }
        expect(failed).toBe(0);
      } finally {
        await kv.destroy().catch(() => {});
        await kv.close();
        await restoreCluster();
      }
    }, 60_000);
  });
}
