import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { describe, it } from "vitest";
import { EtcdKv } from "../../src/adapters/kv/etcd-kv.js";
import { JetStreamKv } from "../../src/adapters/kv/jetstream-kv.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { uniqueName } from "./backends.js";
import { sleep, until } from "./servers.js";

/**
 * The loopback clusters that scripts/cluster.sh runs (three NATS nodes, three etcd members), and the
 * controls the failure tests use on them: kill -9, start, pause and resume one node by name.
 */
const SCRIPT = fileURLToPath(new URL("../../scripts/cluster.sh", import.meta.url));

export type ClusterKind = "jetstream" | "etcd";

export interface ClusterNode {
  readonly name: string;
  readonly url: string;
}

export const CLUSTERS: Record<ClusterKind, readonly ClusterNode[]> = {
  jetstream: [1, 2, 3].map((i) => ({ name: `nats-${i}`, url: `nats://127.0.0.1:${14221 + i}` })),
  etcd: [1, 2, 3].map((i) => ({ name: `etcd-${i}`, url: `http://127.0.0.1:${12377 + 2 * i}` })),
};

function script(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile("bash", [SCRIPT, ...args], { timeout: 90_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`cluster.sh ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout),
    ),
  );
}

export const node = {
  kill9: (name: string) => script("kill", name),
  start: (name: string) => script("start", name),
  pause: (name: string) => script("pause", name),
  resume: (name: string) => script("resume", name),
};

/** Every node running and answering (started where needed): what each test leaves behind. */
export async function restoreCluster(): Promise<void> {
  for (const kind of ["jetstream", "etcd"] as const)
    for (const n of CLUSTERS[kind]) await script("resume", n.name).catch(() => {});
  await script("up");
}

export async function clusterUp(): Promise<boolean> {
  return script("status").then(
    () => true,
    () => false,
  );
}

/**
 * Registers the cluster suites when the clusters answer. IDMAP_TEST_CLUSTER=1 (set by .ci/run, which
 * starts them) registers them whatever the state, so a cluster that is down fails loudly instead of
 * being skipped; without it, a run with no cluster reports one skipped entry saying how to start it.
 */
export async function forCluster(register: () => void): Promise<void> {
  if (process.env.IDMAP_TEST_CLUSTER === "1" || (await clusterUp())) {
    register();
    return;
  }
  describe.skip("clusters (not running: npm run cluster, or IDMAP_TEST_CLUSTER=1 to require them)", () => {
    it("needs scripts/cluster.sh up", () => {});
  });
}

/**
 * The clusters are shared by every test run on the machine (several worktrees, CI): a run that kills
 * nodes must not overlap another's. The lock is a directory holding its owner's pid, under the
 * clusters' own directory; one whose owner has exited is taken over. Returns the release.
 */
export async function lockClusters(timeoutMs: number): Promise<() => void> {
  const dir = join(process.env.IDMAP_CLUSTER_DIR ?? "/var/lib/idmap-cluster", "tests.lock");
  const end = performance.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, "pid"), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const owner = ownerOf(dir);
    if (owner > 0 && !alive(owner)) rmSync(dir, { recursive: true, force: true });
    else if (performance.now() > end) throw new Error(`the cluster tests of pid ${owner} still hold ${dir}`);
    else await sleep(owner > 0 ? 1_000 : 100);
  }
}

/** The pid in the lock, or 0 while its owner has not written it yet (or the lock just went). */
function ownerOf(dir: string): number {
  try {
    return Number(readFileSync(join(dir, "pid"), "utf8")) || 0;
  } catch {
    return 0;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Service settings for a store of its own on the cluster, through `nodes` (all three by default). */
export function clusterEnv(kind: ClusterKind, nodes: readonly ClusterNode[] = CLUSTERS[kind]): Record<string, string> {
  const urls = nodes.map((n) => n.url).join(",");
  const bucket = uniqueName("idmap_cluster");
  return kind === "jetstream"
    ? { IDMAP_KV_BACKEND: "jetstream", IDMAP_NATS_URL: urls, IDMAP_KV_BUCKET: bucket, IDMAP_KV_REPLICAS: "3" }
    : { IDMAP_KV_BACKEND: "etcd", IDMAP_ETCD_ENDPOINTS: urls, IDMAP_KV_BUCKET: bucket };
}

/** A KV client on the cluster with a bucket or prefix of its own, which `destroy()` drops. */
export async function openClusterKv(
  kind: ClusterKind,
  name: string,
  nodes: readonly ClusterNode[] = CLUSTERS[kind],
): Promise<IdentityKv & { destroy(): Promise<void> }> {
  const urls = nodes.map((n) => n.url);
  return kind === "jetstream"
    ? JetStreamKv.open({ servers: urls, bucket: name, replicas: 3, timeoutMs: 5_000 })
    : EtcdKv.open({ endpoints: urls, keyPrefix: `${name}/`, timeoutMs: 5_000 });
}

/**
 * The node that leads writes for `bucket`: the JetStream stream's leader (elected per stream), or
 * etcd's raft leader. Waits while an election is under way.
 */
export async function leaderOf(kind: ClusterKind, bucket: string): Promise<string> {
  let leader = "";
  await until(
    `a ${kind} leader`,
    async () => {
      leader = kind === "jetstream" ? await streamLeader(bucket) : await etcdLeader();
      return leader !== "";
    },
    30_000,
    100,
  );
  return leader;
}

async function streamLeader(bucket: string): Promise<string> {
  const nc = await connect({ servers: CLUSTERS.jetstream.map((n) => n.url), timeout: 2_000 });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 2_000 });
    return (await jsm.streams.info(`KV_${bucket}`)).cluster?.leader ?? "";
  } finally {
    await nc.close();
  }
}

async function etcdLeader(): Promise<string> {
  for (const n of CLUSTERS.etcd) {
    try {
      const r = await fetch(`${n.url}/v3/maintenance/status`, {
        method: "POST",
        body: "{}",
        signal: AbortSignal.timeout(1_000),
      });
      const s = (await r.json()) as { header?: { member_id?: string }; leader?: string };
      if (s.leader && s.leader !== "0" && s.header?.member_id === s.leader) return n.name;
    } catch {
      // a member that is down or paused: ask the next
    }
  }
  return "";
}

/** The JetStream stream is replicated everywhere again (each replica current), or etcd is healthy. */
export async function caughtUp(kind: ClusterKind, bucket: string): Promise<void> {
  await until(
    `${kind} replicas current`,
    async () => {
      if (kind === "etcd") return clusterUp();
      const nc = await connect({ servers: CLUSTERS.jetstream.map((n) => n.url), timeout: 2_000 });
      try {
        const info = await (await jetstreamManager(nc, { timeout: 2_000 })).streams.info(`KV_${bucket}`);
        const replicas = info.cluster?.replicas ?? [];
        return info.cluster?.leader !== undefined && replicas.length === 2 && replicas.every((r) => r.current);
      } finally {
        await nc.close();
      }
    },
    60_000,
    200,
  );
}
