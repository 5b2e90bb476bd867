import { describe, expect, it } from "vitest";
import { serversFromEnv } from "../../bench/lib/backends.js";
import { runBench } from "../../bench/lib/bench.js";
import { summary, type Report } from "../../bench/lib/report.js";

/**
 * The benchmark's machinery on the memory backend with tiny counts: it starts the service and the
 * ceilings, drives both front-ends, seeds bindings for the memory section, and produces a well-formed
 * report. No timing is asserted: performance targets live in `npm run bench`, not in tests.
 */
describe("npm run bench machinery", () => {
  it("produces a well-formed report on the memory backend", { timeout: 180_000 }, async () => {
    const lines: string[] = [];
    const report: Report = await runBench(
      {
        backends: ["memory"],
        frontends: ["rest", "grpc"],
        sections: ["publish", "lookup", "memory"],
        servers: serversFromEnv(),
        publish: { updatesPerRound: 20, batchSize: 10, batchesInFlight: 2, rounds: 1, rawInFlight: 4 },
        lookup: { concurrency: [1, 64], durationMs: 150, rounds: 1, keys: 10 },
        memory: { targets: [200], backends: ["memory"] },
        logLevel: "warn",
      },
      (line) => lines.push(line),
    );

    expect(report.version).toBe(1);
    expect(report.skipped).toEqual([]);
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes("[memory] publish"))).toBe(true);

    expect(report.publish.map((r) => r.phase)).toEqual(["new", "move", "repeat"]);
    for (const r of report.publish) {
      expect(r.outcomes).toEqual({ [r.expectedOutcome]: 20 });
      expect(r.service).toBeGreaterThan(0);
    }
    const [fresh, move, repeat] = report.publish;
    expect(fresh!.kvOpsPerUpdate.writes).toBeGreaterThan(0);
    expect(fresh!.raw).toBeGreaterThan(0);
    expect(move!.kvOpsPerUpdate.writes).toBeGreaterThan(0);
    expect(repeat!.kvOpsPerUpdate.reads + repeat!.kvOpsPerUpdate.writes).toBe(0);
    expect(repeat!.raw).toBeNull();

    expect(report.lookup.map((r) => `${r.frontend}x${r.concurrency}`)).toEqual([
      "restx1",
      "restx64",
      "grpcx1",
      "grpcx64",
    ]);
    for (const r of report.lookup) {
      expect(r.service.requests).toBeGreaterThan(0);
      expect(r.ceiling.requests).toBeGreaterThan(0);
      expect(r.service.errors + r.ceiling.errors).toBe(0);
      expect(r.service.p99).toBeGreaterThanOrEqual(r.service.p50);
      expect(r.paced !== undefined).toBe(r.concurrency === 64);
    }

    expect(report.memory).toHaveLength(1);
    expect(report.memory[0]!.bindings).toBeGreaterThanOrEqual(200);
    expect(report.memory[0]!.rss).toBeGreaterThan(0);

    // Targets are judged on embedded and JetStream only; the memory backend is reported, not judged.
    expect(report.targets).toEqual([]);
    const text = summary(report);
    for (const heading of ["Publish over REST", "Lookups by MAC", "Latency at a steady rate", "Memory (RSS"])
      expect(text).toContain(heading);
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });
});
