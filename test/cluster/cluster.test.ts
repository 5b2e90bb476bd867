import { afterAll, beforeAll, describe } from "vitest";
import { refuseUnsafeReplicas } from "../../src/adapters/kv/jetstream-kv.js";
import { kvContract, type ScanPaging } from "../contract/kv.contract.js";
import { destroyAfter, uniqueName } from "../support/backends.js";
import { forCluster, lockClusters, openClusterKv, type ClusterKind } from "../support/cluster.js";
import { jetstreamReplicatedCasOnOldServers, natsClusterVersion } from "./jetstream-replicated-cas.js";
import { oneFollowerDown } from "./member-down.js";
import { publishThroughFailures } from "./publish-through-failures.js";
import { readYourWritesOnALaggingFollower } from "./read-your-writes.js";
import { threeInstancesThroughARestart } from "./three-instances.js";

/**
 * identity-map on the three-node clusters of scripts/cluster.sh. One file on purpose: its tests run
 * one after another, so a test that kills or pauses a node never overlaps another cluster test (each
 * restores every node before it ends); a lock keeps other test runs on the machine out meanwhile.
 */
const natsVersion = await natsClusterVersion().catch(() => "unreachable");
const replicatedCasSafe = (() => {
  try {
    refuseUnsafeReplicas(3, natsVersion);
    return true;
  } catch {
    return false;
  }
})();

/** How each cluster's scan pages: as the single-server entries of test/contract/identity-kv.test.ts. */
const CLUSTER_PAGING: Record<ClusterKind, ScanPaging> = {
  etcd: { pageSize: "limit", reads: "pinned" },
  jetstream: { pageSize: "limit", reads: "pushed" },
};

function clusterSuites(kind: ClusterKind): void {
  const name = uniqueName("idmap_ctest");
  kvContract(
    `${kind} cluster (3 nodes)`,
    destroyAfter(() => openClusterKv(kind, name)),
    {
      secondClient: () => openClusterKv(kind, name),
      scan: CLUSTER_PAGING[kind],
    },
  );
  oneFollowerDown(kind);
  readYourWritesOnALaggingFollower(kind);
  publishThroughFailures(kind);
  threeInstancesThroughARestart(kind);
}

await forCluster(() => {
  describe.sequential("clusters", () => {
    let release: (() => void) | undefined;
    // Another run on this machine may be killing nodes: wait for it (its cluster tests take minutes).
    beforeAll(async () => {
      release = await lockClusters(15 * 60_000);
    }, 16 * 60_000);
    afterAll(() => release?.());
    clusterSuites("etcd");
    // A declared capability of the servers, not a skip: on servers before MIN_SERVER_FOR_REPLICATED_CAS
    // the service refuses replicated buckets, and these tests prove both the refusal and its reason.
    if (replicatedCasSafe) clusterSuites("jetstream");
    else jetstreamReplicatedCasOnOldServers(natsVersion);
  });
});
