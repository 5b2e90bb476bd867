/** The benchmark's report: what was measured, the targets, a readable summary, and JSON for docs. */
import type { Machine } from "./util.js";
import { fmtInt, fmtMiB, fmtMs, fmtRatio } from "./util.js";
import type { LookupRow } from "./lookup.js";
import type { MemorySample } from "./memory.js";
import type { PublishRow } from "./publish.js";
import type { ScaleRow } from "./scale.js";

export interface Target {
  readonly name: string;
  readonly backend: string;
  readonly value: number;
  readonly limit: number;
  readonly met: boolean;
  readonly text: string;
}

export interface Report {
  readonly version: 1;
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly machine: Machine;
  readonly load: { readonly min: number; readonly median: number; readonly max: number };
  readonly options: Readonly<Record<string, unknown>>;
  readonly publish: readonly PublishRow[];
  readonly lookup: readonly LookupRow[];
  readonly memory: readonly MemorySample[];
  /** Absent in reports written before issue 13. */
  readonly scale?: readonly ScaleRow[];
  readonly skipped: readonly { readonly backend: string; readonly reason: string }[];
  readonly targets: readonly Target[];
}

/** Backends the lookup targets are set for (the issue's): the others are reported, not judged. */
export const TARGET_BACKENDS: readonly string[] = ["embedded", "jetstream"];
export const LIMITS = { ratio: 0.8, p99Ms: 5, p99Concurrency: 64 } as const;

export function evaluateTargets(lookup: readonly LookupRow[]): Target[] {
  const out: Target[] = [];
  for (const r of lookup) {
    if (!TARGET_BACKENDS.includes(r.backend)) continue;
    const fe = r.frontend.toUpperCase();
    out.push({
      name: `${fe} throughput x${r.concurrency} >= ${LIMITS.ratio * 100}% of ${r.ceilingLabel}`,
      backend: r.backend,
      value: r.ratio,
      limit: LIMITS.ratio,
      met: r.ratio >= LIMITS.ratio,
      text: `${fmtRatio(r.ratio)} (${fmtInt(r.service.rps)} vs ${fmtInt(r.ceiling.rps)} req/s; server CPU ${fmtInt(r.service.serverCpuUs)} vs ${fmtInt(r.ceiling.serverCpuUs)} us/req)`,
    });
    if (r.concurrency !== LIMITS.p99Concurrency) continue;
    out.push({
      name: `${fe} p99 < ${LIMITS.p99Ms} ms, ${r.concurrency} clients, saturated`,
      backend: r.backend,
      value: r.service.p99,
      limit: LIMITS.p99Ms,
      met: r.service.p99 < LIMITS.p99Ms,
      text: `${fmtMs(r.service.p99)} ms (${r.ceilingLabel} ${fmtMs(r.ceiling.p99)} ms)`,
    });
    if (r.paced) {
      out.push({
        name: `${fe} p99 < ${LIMITS.p99Ms} ms, ${r.concurrency} clients, paced at ${fmtInt(r.paced.rate)} req/s`,
        backend: r.backend,
        value: r.paced.service.p99,
        limit: LIMITS.p99Ms,
        met: r.paced.service.p99 < LIMITS.p99Ms,
        text: `${fmtMs(r.paced.service.p99)} ms (${r.ceilingLabel} ${fmtMs(r.paced.ceiling.p99)} ms)`,
      });
    }
  }
  return out;
}

function table(head: readonly string[], rows: readonly (readonly string[])[], right: readonly boolean[]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (right[i] ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join(" | ")} |`;
  return [
    line(head),
    `|${w.map((n, i) => (right[i] ? `${"-".repeat(n + 1)}:` : `${"-".repeat(n + 2)}`)).join("|")}|`,
    ...rows.map(line),
  ].join("\n");
}

const PHASE_TEXT: Record<string, string> = { new: "new devices", move: "DHCP moves", repeat: "unchanged (repeat)" };

export function publishTable(rows: readonly PublishRow[]): string {
  return table(
    [
      "backend",
      "updates",
      "service updates/s",
      "service CPU us/update",
      "KV ops/update (read+write)",
      "raw client, same ops",
      "raw updates/s",
      "service/raw",
      "outcomes",
    ],
    rows.map((r) => {
      const m = r.kvOpsPerUpdate;
      const unexpected = Object.entries(r.outcomes).filter(([k]) => k !== r.expectedOutcome);
      return [
        r.backend,
        PHASE_TEXT[r.phase] ?? r.phase,
        fmtInt(r.service),
        fmtInt(r.serviceCpuUs),
        `${(m.reads + m.writes).toFixed(2)} (${m.reads.toFixed(2)}+${m.writes.toFixed(2)})`,
        r.raw === null ? "-" : r.rawLabel,
        r.raw === null ? "no KV ops" : fmtInt(r.raw),
        r.ratio === null ? "-" : fmtRatio(r.ratio),
        (unexpected.length
          ? `UNEXPECTED ${unexpected.map(([k, v]) => `${k} ${v}`).join(", ")}`
          : `all ${r.expectedOutcome}`) +
          (r.rawFailures > 0 ? `; raw write failures ${r.rawFailures} (${r.rawFirstFailure ?? ""})` : ""),
      ];
    }),
    [false, false, true, true, false, true, true, false],
  );
}

const judge = (backend: string, misses: readonly string[]) =>
  TARGET_BACKENDS.includes(backend)
    ? misses.length
      ? `MISSED (${misses.join(", ")})`
      : "met"
    : misses.length
      ? `(${misses.join(", ")}; not judged)`
      : "(not judged)";
const pair = (a: number, b: number) => `${fmtMs(a)} / ${fmtMs(b)}`;

export function lookupTable(rows: readonly LookupRow[]): string {
  return table(
    [
      "backend",
      "front-end",
      "clients",
      "service req/s",
      "ceiling req/s",
      "service/ceiling",
      "service p50 / p99 ms",
      "ceiling p50 / p99 ms",
      "server CPU us/req (service / ceiling)",
      "target",
    ],
    rows.map((r) => {
      const misses: string[] = [];
      if (r.ratio < LIMITS.ratio) misses.push(`ratio < ${LIMITS.ratio}`);
      if (r.concurrency === LIMITS.p99Concurrency && r.service.p99 >= LIMITS.p99Ms)
        misses.push(`p99 >= ${LIMITS.p99Ms} ms`);
      return [
        r.backend,
        `${r.frontend.toUpperCase()} (${r.ceilingLabel})`,
        String(r.concurrency),
        fmtInt(r.service.rps),
        fmtInt(r.ceiling.rps),
        fmtRatio(r.ratio),
        pair(r.service.p50, r.service.p99),
        pair(r.ceiling.p50, r.ceiling.p99),
        `${fmtInt(r.service.serverCpuUs)} / ${fmtInt(r.ceiling.serverCpuUs)}`,
        judge(r.backend, misses) +
          (r.service.errors + r.ceiling.errors > 0 ? ` ERRORS ${r.service.errors}/${r.ceiling.errors}` : ""),
      ];
    }),
    [false, false, true, true, true, true, true, true, true, false],
  );
}

export function pacedTable(rows: readonly LookupRow[]): string {
  const paced = rows.filter((r) => r.paced);
  return table(
    [
      "backend",
      "front-end",
      "clients",
      "paced at req/s",
      "service got req/s",
      "service p50 / p99 ms",
      "ceiling p50 / p99 ms",
      "target p99 < 5 ms",
    ],
    paced.map((r) => {
      const p = r.paced!;
      return [
        r.backend,
        r.frontend.toUpperCase(),
        String(r.concurrency),
        fmtInt(p.rate),
        fmtInt(p.service.rps),
        pair(p.service.p50, p.service.p99),
        pair(p.ceiling.p50, p.ceiling.p99),
        judge(r.backend, p.service.p99 >= LIMITS.p99Ms ? [`p99 >= ${LIMITS.p99Ms} ms`] : []) +
          (p.service.errors + p.ceiling.errors > 0 ? ` ERRORS ${p.service.errors}/${p.ceiling.errors}` : ""),
      ];
    }),
    [false, false, true, true, true, true, true, false],
  );
}

/** Issue 13's publish targets: CPU per update on embedded and memory, flat from the smallest map to the largest. */
export const SCALE_LIMITS = { newUs: 100, moveUs: 125, flat: 1.25 } as const;

export function evaluateScaleTargets(rows: readonly ScaleRow[]): Target[] {
  const out: Target[] = [];
  const backends = [...new Set(rows.map((r) => r.backend))];
  for (const backend of backends) {
    const mine = rows.filter((r) => r.backend === backend).sort((a, b) => a.bindings - b.bindings);
    for (const [phase, limit] of [
      ["new", SCALE_LIMITS.newUs],
      ["move", SCALE_LIMITS.moveUs],
    ] as const) {
      const cpu = mine.map((r) => r.phases.find((p) => p.phase === phase)!.cpuUsPerUpdate);
      const worst = Math.max(...cpu);
      out.push({
        name: `publish CPU per ${phase === "new" ? "new device" : "DHCP move"} <= ${limit} us at every map size`,
        backend,
        value: worst,
        limit,
        met: worst <= limit,
        text: mine.map((r, i) => `${fmtInt(cpu[i]!)} us at ${fmtInt(r.bindings)}`).join(", "),
      });
      if (mine.length < 2) continue;
      const growth = cpu[cpu.length - 1]! / cpu[0]!;
      out.push({
        name: `publish CPU per ${phase === "new" ? "new device" : "DHCP move"} flat (largest map <= ${SCALE_LIMITS.flat}x smallest)`,
        backend,
        value: growth,
        limit: SCALE_LIMITS.flat,
        met: growth <= SCALE_LIMITS.flat,
        text: `${fmtRatio(growth)}x from ${fmtInt(mine[0]!.bindings)} to ${fmtInt(mine[mine.length - 1]!.bindings)} bindings`,
      });
    }
  }
  return out;
}

export function scaleTable(rows: readonly ScaleRow[]): string {
  return table(
    [
      "backend",
      "bindings",
      "new: CPU us/update (main thread)",
      "new: updates/s",
      "move: CPU us (main)",
      "move: /s",
      "unchanged: CPU us (main)",
      "unchanged: /s",
    ],
    rows.map((r) => {
      const p = (phase: string) => r.phases.find((x) => x.phase === phase)!;
      // The main thread's part in brackets; the rest ran on other threads (garbage collection, mostly).
      const cpu = (phase: string) => {
        const { cpuUsPerUpdate, mainThreadCpuUsPerUpdate } = p(phase);
        return mainThreadCpuUsPerUpdate === undefined
          ? fmtInt(cpuUsPerUpdate)
          : `${fmtInt(cpuUsPerUpdate)} (${fmtInt(mainThreadCpuUsPerUpdate)})`;
      };
      return [
        r.backend,
        fmtInt(r.bindings),
        cpu("new"),
        fmtInt(p("new").updatesPerSecond),
        cpu("move"),
        fmtInt(p("move").updatesPerSecond),
        cpu("repeat"),
        fmtInt(p("repeat").updatesPerSecond),
      ];
    }),
    [false, true, true, true, true, true, true, true],
  );
}

/** Issue 13's memory targets: RSS per cached binding, and a fresh instance answering lookups soon. */
export const MEMORY_LIMITS = { bytesPerBinding: 400, firstLookupMs: 3_000, firstLookupAt: 1_000_000 } as const;

export function evaluateMemoryTargets(rows: readonly MemorySample[]): Target[] {
  const out: Target[] = [];
  for (const r of rows) {
    out.push({
      name: `<= ${MEMORY_LIMITS.bytesPerBinding} bytes of RSS per cached binding (${r.label}, ${fmtInt(r.target)})`,
      backend: r.backend,
      value: r.bytesPerBinding,
      limit: MEMORY_LIMITS.bytesPerBinding,
      met: r.bytesPerBinding <= MEMORY_LIMITS.bytesPerBinding,
      text: `${fmtInt(r.bytesPerBinding)} bytes (RSS ${fmtMiB(r.rss)} MiB, heap ${fmtMiB(r.heapUsed)} MiB)`,
    });
    if (r.label === "fresh start" && r.bindings >= MEMORY_LIMITS.firstLookupAt)
      out.push({
        name: `a fresh start with ${fmtInt(r.bindings)} bindings answers a lookup within ${MEMORY_LIMITS.firstLookupMs / 1000} s`,
        backend: r.backend,
        value: r.firstLookupMs,
        limit: MEMORY_LIMITS.firstLookupMs,
        met: r.firstLookupMs <= MEMORY_LIMITS.firstLookupMs,
        text:
          `${fmtInt(r.firstLookupMs)} ms from process start, of which ${fmtInt(r.modulesMs)} ms loading modules ` +
          `(cache fully loaded at ${fmtInt(r.loadedMs)} ms)`,
      });
  }
  return out;
}

export function memoryTable(rows: readonly MemorySample[]): string {
  return table(
    [
      "backend",
      "instance",
      "bindings",
      "RSS MiB",
      "heap MiB",
      "empty-map RSS MiB",
      "bytes/binding (RSS)",
      "modules loaded ms",
      "first lookup ms",
      "cache loaded ms",
      "/metrics scrape ms (first, next)",
    ],
    rows.map((r) => [
      r.backend,
      r.label,
      fmtInt(r.bindings),
      fmtMiB(r.rss),
      fmtMiB(r.heapUsed),
      fmtMiB(r.baselineRss),
      fmtInt(r.bytesPerBinding),
      r.label === "fresh start" ? fmtInt(r.modulesMs) : "-",
      r.label === "fresh start" ? fmtInt(r.firstLookupMs) : "-",
      r.label === "fresh start" ? fmtInt(r.loadedMs) : "-",
      `${fmtMs(r.firstScrapeMs)}, ${fmtMs(r.scrapeMs)}`,
    ]),
    [false, false, true, true, true, true, true, true, true, true, true],
  );
}

export function summary(r: Report): string {
  const parts: string[] = [];
  const m = r.machine;
  parts.push(
    `identity-map benchmark, ${r.startedAt}, ${r.durationSeconds.toFixed(0)} s`,
    `${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node}; load average during the run ${r.load.min.toFixed(1)}-${r.load.max.toFixed(1)} (median ${r.load.median.toFixed(1)})`,
  );
  if (r.publish.length)
    parts.push(
      "",
      "Publish over REST (batches of " +
        String(r.publish[0]!.batchSize) +
        ", " +
        String(r.publish[0]!.batchesInFlight) +
        " in flight; raw client " +
        String(r.publish[0]!.rawInFlight) +
        " updates in flight)",
      publishTable(r.publish),
    );
  if (r.scale?.length)
    parts.push(
      "",
      "Publish CPU as the map grows (in-process, no HTTP; CPU of the process per update, KV and device store included)",
      scaleTable(r.scale),
    );
  if (r.lookup.length) {
    parts.push(
      "",
      "Lookups by MAC (GET /v1/canonical-devices/lookup?mac=, gRPC GetCanonicalDevice), closed loop (each client sends when answered); medians of rounds",
      lookupTable(r.lookup),
    );
    if (r.lookup.some((x) => x.paced))
      parts.push(
        "",
        "Latency at a steady rate: the same 64 clients paced at a quarter of the ceiling's saturated throughput",
        pacedTable(r.lookup),
      );
  }
  if (r.memory.length)
    parts.push(
      "",
      "Memory (RSS after GC; the local cache mirrors every binding; times since the process started)",
      memoryTable(r.memory),
    );
  if (r.skipped.length) parts.push("", `Skipped: ${r.skipped.map((s) => `${s.backend} (${s.reason})`).join("; ")}`);
  if (r.targets.length) {
    const missed = r.targets.filter((t) => !t.met);
    parts.push(
      "",
      `Targets (lookups: ${TARGET_BACKENDS.join(", ")}; publish CPU and memory: embedded, memory): ${r.targets.length - missed.length} of ${r.targets.length} met`,
    );
    for (const t of r.targets) parts.push(`  ${t.met ? "met   " : "MISSED"}  ${t.backend}: ${t.name}: ${t.text}`);
  }
  return parts.join("\n");
}
