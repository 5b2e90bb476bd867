/**
 * identity-map benchmark (issue 7): publish throughput, lookup latency and throughput, memory.
 *
 *   npm run bench                                  # every backend, both front-ends (about 15 minutes)
 *   npm run bench -- --quick                       # smaller counts, shorter runs (under 3 minutes)
 *   npm run bench -- embedded jetstream            # some backends (or --backends=embedded,jetstream)
 *   npm run bench -- --frontends=grpc --sections=lookup
 *   npm run bench -- --profile                     # CPU profiles of each service process (bench/results/profiles)
 *   npm run bench -- --cluster                     # etcd and JetStream: single server, then the 3-node
 *                                                  # clusters of scripts/cluster.sh (npm run cluster)
 *
 * Other options: --updates=N (devices per publish round), --batch=N, --in-flight=N (publish batches),
 * --rounds=N, --duration=MS (per lookup measurement), --keys=N (lookup keys), --memory=100000,1000000,
 * --memory-backends=embedded,memory (--memory=100000,1000000,5000000 for the 5M table: about 25 more minutes),
 * --memory-idle=SECONDS (the largest publishing instance measured again after that long idle; default 120, 0: not),
 * --scale=10000,100000,1000000 (map sizes of the publish-CPU section), --scale-backends=embedded,memory,
 * --scale-updates=N, --log-level=LEVEL (the service's; default info), --out=FILE.
 * The servers are the ones scripts/start-servers.sh starts (IDMAP_BENCH_NATS_URL, IDMAP_BENCH_ETCD_ENDPOINTS,
 * IDMAP_BENCH_REDIS_URL to point elsewhere); a backend whose server does not answer is reported and skipped.
 * Results: a summary table on stdout and JSON in bench/results/<date>.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { BACKENDS, FRONTENDS, serversFromEnv, type BackendName, type FrontendName } from "./lib/backends.js";
import { RESULTS_DIR, runBench, SECTIONS, type BenchOptions, type Section } from "./lib/bench.js";
import { summary } from "./lib/report.js";

function parse(argv: readonly string[]): { opts: BenchOptions; out: string; cluster: boolean } {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (const a of argv) {
    if (!a.startsWith("--")) positional.push(a);
    else {
      const eq = a.indexOf("=");
      flags.set(eq < 0 ? a.slice(2) : a.slice(2, eq), eq < 0 ? "" : a.slice(eq + 1));
    }
  }
  const known = [
    "quick",
    "backends",
    "frontends",
    "sections",
    "updates",
    "batch",
    "in-flight",
    "raw-in-flight",
    "rounds",
    "duration",
    "keys",
    "memory",
    "memory-backends",
    "memory-idle",
    "scale",
    "scale-backends",
    "scale-updates",
    "log-level",
    "profile",
    "out",
    "cluster",
  ];
  for (const k of flags.keys())
    if (!known.includes(k)) throw new Error(`unknown option --${k} (known: ${known.map((x) => `--${x}`).join(", ")})`);
  const listOf = <T extends string>(
    name: string,
    value: string | undefined,
    allowed: readonly T[],
    dflt: readonly T[],
  ): T[] => {
    const items =
      value === undefined || value === ""
        ? [...dflt]
        : value
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean);
    for (const i of items)
      if (!(allowed as readonly string[]).includes(i))
        throw new Error(`--${name}: unknown ${JSON.stringify(i)} (expected ${allowed.join(", ")})`);
    return items as T[];
  };
  const num = (name: string, dflt: number): number => {
    const v = flags.get(name);
    if (v === undefined || v === "") return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0)
      throw new Error(`--${name}: expected a positive number, got ${JSON.stringify(v)}`);
    return n;
  };
  const quick = flags.has("quick");
  const backends = listOf<BackendName>(
    "backends",
    positional.length ? positional.join(",") : flags.get("backends"),
    BACKENDS,
    BACKENDS,
  );
  const rounds = num("rounds", quick ? 1 : 3);
  const memoryTargets = (flags.get("memory") || (quick ? "100000" : "100000,1000000")).split(",").map(Number);
  if (memoryTargets.some((n) => !Number.isInteger(n) || n <= 0))
    throw new Error("--memory: expected binding counts, e.g. 100000,1000000");
  const scaleTargets = flags.get("scale");
  if (scaleTargets?.split(",").some((n) => !Number.isInteger(Number(n)) || Number(n) <= 0))
    throw new Error("--scale: expected binding counts, e.g. 10000,100000,1000000");
  const profile = flags.get("profile");
  const stamp = new Date().toISOString().slice(0, 16).replace(/:/g, "-");
  const opts: { -readonly [K in keyof BenchOptions]: BenchOptions[K] } = {
    backends,
    frontends: listOf<FrontendName>("frontends", flags.get("frontends"), FRONTENDS, FRONTENDS),
    sections: listOf<Section>("sections", flags.get("sections"), SECTIONS, SECTIONS),
    servers: serversFromEnv(),
    publish: {
      updatesPerRound: num("updates", quick ? 1000 : 3000),
      batchSize: num("batch", 1000),
      batchesInFlight: num("in-flight", 2),
      rounds,
      rawInFlight: num("raw-in-flight", 64),
    },
    lookup: { concurrency: [1, 64], durationMs: num("duration", quick ? 700 : 2000), rounds, keys: num("keys", 1000) },
    memory: {
      targets: memoryTargets,
      backends: listOf<BackendName>("memory-backends", flags.get("memory-backends"), BACKENDS, [
        "embedded",
        "memory",
      ]).filter((b) => backends.includes(b) || flags.has("memory-backends")),
      idleSeconds: flags.get("memory-idle") === "0" ? 0 : num("memory-idle", quick ? 0 : 120),
    },
    scale: {
      targets: (flags.get("scale") || (quick ? "10000,100000" : "10000,100000,1000000")).split(",").map(Number),
      backends: listOf<BackendName>("scale-backends", flags.get("scale-backends"), BACKENDS, [
        "embedded",
        "memory",
      ]).filter((b) => backends.includes(b) || flags.has("scale-backends")),
      updates: num("scale-updates", quick ? 1000 : 3000),
    },
    logLevel: flags.get("log-level") || "info",
    ...(profile !== undefined ? { profileDir: profile || join(RESULTS_DIR, "profiles", stamp) } : {}),
  };
  const cluster = flags.has("cluster");
  if (cluster) {
    // Only the stores that run as clusters; the others have no clustered counterpart here.
    opts.backends = backends.filter((b) => CLUSTERED.includes(b));
    opts.memory = { ...opts.memory, backends: [] };
  }
  return { opts, out: flags.get("out") || join(RESULTS_DIR, `${stamp}${cluster ? "-cluster" : ""}.json`), cluster };
}

const CLUSTERED: readonly BackendName[] = ["etcd", "jetstream"];

/** The clusters of scripts/cluster.sh (three nodes each, on loopback). */
const CLUSTER_SERVERS = {
  natsUrl: [14222, 14223, 14224].map((p) => `nats://127.0.0.1:${p}`).join(","),
  etcdEndpoints: [12379, 12381, 12383].map((p) => `http://127.0.0.1:${p}`),
};

async function main(): Promise<void> {
  const { opts, out, cluster } = parse(process.argv.slice(2));
  const t0 = performance.now();
  const log = (line: string) => console.log(`${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s ${line}`);
  log(
    `benchmark: backends ${opts.backends.join(", ")}; front-ends ${opts.frontends.join(", ")}; sections ${opts.sections.join(", ")}`,
  );
  const report = await runBench(opts, log);
  console.log(`\n${cluster ? "Single servers\n" : ""}${summary(report)}\n`);
  let clustered: Awaited<ReturnType<typeof runBench>> | undefined;
  if (cluster) {
    log("the same on the 3-node clusters (a service refused by its store is listed as skipped, with why)");
    clustered = await runBench({ ...opts, servers: { ...opts.servers, ...CLUSTER_SERVERS } }, log);
    console.log(`\n3-node clusters\n${summary(clustered)}\n`);
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(clustered ? { single: report, cluster: clustered } : report, null, 2)}\n`);
  console.log(`results: ${out}${opts.profileDir ? `; CPU profiles: ${opts.profileDir}` : ""}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
