import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { CLUSTERS, clusterEnv, leaderOf, node, restoreCluster, type ClusterKind } from "../support/cluster.js";
import { missingAcknowledged, Publisher, report, type RequestRecord } from "../support/outage.js";
import { sleep, until } from "../support/servers.js";
import { directKv, serviceConfig, startService, tempDir, type Service } from "../support/service.js";

/** A failed publish must still answer within the request timeout, plus the quorum probe and scheduling. */
const SLACK_MS = 1_000;
const OUTAGE_CODES = ["kv_unavailable", "request_timeout", "write_outcome_unknown"];

interface Drill {
  readonly service: Service;
  readonly direct: IdentityKv;
  readonly publisher: Publisher;
  readonly bucket: string;
}

/** A service on the cluster publishing a stream of batches; `act` breaks and mends the cluster meanwhile. */
async function duringPublishStream(kind: ClusterKind, act: (d: Drill) => Promise<void>): Promise<Drill> {
  const env = clusterEnv(kind);
  const data = tempDir(`cluster-${kind}`);
  const config = serviceConfig(env, data.dir);
  const service = await startService(config);
  const direct = await directKv(config);
  const publisher = Publisher.overRest(randomUUID().slice(0, 8), () => service.rest);
  const drill = { service, direct, publisher, bucket: env.IDMAP_KV_BUCKET! };
  try {
    publisher.start();
    await until("six acknowledged batches", () => publisher.ackedBatches >= 6, 30_000, 5);
    await act(drill);
    await publisher.stop();
    return drill;
  } finally {
    await publisher.stop();
    await restoreCluster();
    await service.close();
    await (direct as IdentityKv & { destroy(): Promise<void> }).destroy().catch(() => {});
    await direct.close();
    data.remove();
  }
}

function succeededAfter(p: Publisher, from: number, count: number): () => boolean {
  return () => p.requests.filter((r) => r.start >= from && r.status === 200).length >= count;
}

/** Every request that failed answered 503 with an outage code, within the request timeout. */
function expectBoundedOutage(failed: readonly RequestRecord[], requestTimeoutMs: number): void {
  for (const q of failed) {
    expect(q.status, JSON.stringify(q)).toBe(503);
    expect(OUTAGE_CODES).toContain(q.code);
    expect(q.end - q.start, JSON.stringify(q)).toBeLessThanOrEqual(requestTimeoutMs + SLACK_MS);
  }
}

const ms = (x: number) => Math.round(x);

export function publishThroughFailures(kind: ClusterKind): void {
  describe(`${kind} cluster: publishing through node failures`, () => {
    it("the leader killed mid-stream, then a second node: no acknowledged update lost; 503 naming no quorum while a majority is gone; recovery by itself", async () => {
      const figures: Record<string, unknown> = {};
      let lost: string[] = [];
      let namedNoQuorum = false;
      const d = await duringPublishStream(kind, async ({ publisher: p, bucket, direct, service }) => {
        const leader = await leaderOf(kind, bucket);
        await sleep(3);
        const tKill = p.now();
        await node.kill9(leader);
        await until("publishes to succeed again on two nodes", succeededAfter(p, tKill, 3), 30_000, 10);
        const firstOk = p.firstSuccessAfter(tKill)!;
        const electionFailures = p.requests.filter((r) => r.end >= tKill && r.end <= firstOk.start && r.status !== 200);
        figures.leaderKilled = {
          leader,
          msUntilFirstSuccess: ms(firstOk.end - tKill),
          failedRequests: electionFailures.length,
          codes: [...new Set(electionFailures.map((r) => r.code))],
        };
        expectBoundedOutage(electionFailures, service.config.requestTimeoutMs);

        // A second node gone: one of three left, no majority.
        const second = CLUSTERS[kind].find((n) => n.name !== leader)!.name;
        const tNoQuorum = p.now();
        await node.kill9(second);
        await until(
          "three 503s without quorum",
          () => p.requests.filter((r) => r.start >= tNoQuorum && r.status === 503).length >= 3,
          30_000,
          10,
        );
        await sleep(2_000);
        const tRestart = p.now();
        await node.start(leader);
        await node.start(second);
        const tReady = p.now();
        await until("publishes to succeed again after the restart", succeededAfter(p, tReady, 3), 60_000, 10);
        const noQuorum = p.requests.filter((r) => r.start >= tNoQuorum && r.end <= tRestart);
        const back = p.firstSuccessAfter(tRestart)!;
        figures.noQuorum = {
          requests: noQuorum.length,
          succeeded: noQuorum.filter((r) => r.status === 200).length,
          reasons: [...new Set(noQuorum.map((r) => `${r.status}:${r.code ?? ""}:${r.reason ?? ""}`))],
          maxMs: ms(Math.max(...noQuorum.map((r) => r.end - r.start))),
          msRestartToReady: ms(tReady - tRestart),
          msReadyToFirstSuccess: ms(back.end - tReady),
        };
        // Without quorum nothing is acknowledged unless its writes had all landed before (answered
        // from the cache: every outcome unchanged); everything else is a bounded 503.
        for (const q of noQuorum.filter((r) => r.status === 200 && r.start > tNoQuorum + 5_000))
          expect(new Set(q.outcomes), JSON.stringify(q)).toEqual(new Set(["unchanged"]));
        expectBoundedOutage(
          noQuorum.filter((r) => r.status !== 200),
          service.config.requestTimeoutMs,
        );
        namedNoQuorum = noQuorum.some((r) => r.reason === "no_quorum");
        lost = await missingAcknowledged(direct, service.config.namespace, p.acked);
      });
      report(`${kind}-cluster leader kill`, { ...figures, acknowledged: d.publisher.acked.size, lost: lost.length });
      expect(d.publisher.acked.size).toBeGreaterThan(48);
      expect(lost).toEqual([]);
      expect(namedNoQuorum).toBe(true);
    }, 240_000);

    it("the leader paused (SIGSTOP) and continued: every publish answers within the timeout, none acknowledged is lost", async () => {
      const figures: Record<string, unknown> = {};
      let lost: string[] = [];
      const d = await duringPublishStream(kind, async ({ publisher: p, bucket, direct, service }) => {
        const leader = await leaderOf(kind, bucket);
        const tPause = p.now();
        await node.pause(leader);
        await sleep(5_000);
        const tResume = p.now();
        await node.resume(leader);
        await until("publishes to succeed after SIGCONT", succeededAfter(p, tResume, 3), 60_000, 10);
        const during = p.requests.filter((r) => r.end >= tPause && r.start <= tResume);
        const failed = during.filter((r) => r.status !== 200);
        const firstOk = p.firstSuccessAfter(tPause);
        figures.paused = {
          leader,
          newLeader: await leaderOf(kind, bucket),
          requestsWhilePaused: during.length,
          failed: failed.length,
          msPauseToFirstSuccess: firstOk ? ms(firstOk.end - tPause) : null,
          codes: [...new Set(failed.map((r) => r.code))],
        };
        expectBoundedOutage(failed, service.config.requestTimeoutMs);
        lost = await missingAcknowledged(direct, service.config.namespace, p.acked);
      });
      report(`${kind}-cluster leader paused`, { ...figures, acknowledged: d.publisher.acked.size, lost: lost.length });
      expect(lost).toEqual([]);
    }, 180_000);
  });
}
