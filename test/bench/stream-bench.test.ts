import { describe, expect, it } from "vitest";
import { runStreamBench } from "../../bench/stream-bench.js";

/**
 * The stream benchmark's machinery on the memory backend with tiny counts: the service starts, the
 * follower's cache receives every published change, 3 followers connect and receive, the local cache
 * answers. No timing is asserted: the targets live in `npm run bench:stream`, not in tests.
 */
describe("npm run bench:stream machinery", () => {
  it("produces a well-formed row on the memory backend", { timeout: 180_000 }, async () => {
    const lines: string[] = [];
    const rows = await runStreamBench(
      {
        backends: ["memory"],
        rate: 200,
        seconds: 1,
        followers: 3,
        publish: 200,
        rounds: 1,
        lookupMs: 50,
        inFlight: 16,
        trace: true,
        uncork: false,
        latencyOnly: false,
      },
      (l) => lines.push(l),
    );
    expect(rows).toHaveLength(1);
    const r = rows[0]!;
    expect(r.latency.updates).toBe(200);
    expect(r.latency.missing).toBe(0);
    expect(r.latency.p99Ms).toBeGreaterThanOrEqual(r.latency.p50Ms);
    // The trace split the latency: every stage measured over the MACs the follower got.
    for (const k of ["ackToWatch", "coalesce", "write", "wire", "client", "parse"] as const)
      expect(r.latency.stages[k], k).toBeDefined();
    expect(r.latency.stages.coalesce!.maxMs).toBeGreaterThanOrEqual(0);
    expect(r.followersCost!.withUpdatesPerSec).toHaveLength(1);
    expect(r.followersCost!.changesPerFollower).toBe(400);
    expect(r.localLookups!.bindings).toBeGreaterThan(0);
    expect(r.localLookups!.lookupPerSec).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes("local lookups"))).toBe(true);
  });
});
