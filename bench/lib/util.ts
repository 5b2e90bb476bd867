import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile of unsorted samples (q in 0..1). */
export function percentile(samples: ArrayLike<number>, q: number): number {
  if (samples.length === 0) return Number.NaN;
  const s = Float64Array.from(samples).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** Samples of a value grown on demand (latencies in ms). */
export class Samples {
  private buf = new Float64Array(1 << 14);
  length = 0;
  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }
  values(): Float64Array {
    return this.buf.subarray(0, this.length);
  }
}

const CLOCK_TICKS_PER_SECOND = 100; // Linux USER_HZ

/** User + system CPU milliseconds of a process (all threads), or NaN where /proc is missing. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const fmtInt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a");
export const fmtMs = (n: number) => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : "n/a");
export const fmtRatio = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "n/a");
export const fmtMiB = (bytes: number) => (Number.isFinite(bytes) ? (bytes / 2 ** 20).toFixed(0) : "n/a");

/** Counters from a Prometheus text exposition: `name{labels}` → value, labels in the order given. */
export type Counters = Map<string, number>;

export function parseProm(text: string): Counters {
  const out: Counters = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** Sum of the series of `name` whose labels include every `match` pair, from b minus a. */
export function delta(a: Counters, b: Counters, name: string, match: Record<string, string> = {}): number {
  const sum = (c: Counters) => {
    let s = 0;
    for (const [k, v] of c) {
      if (k !== name && !k.startsWith(`${name}{`)) continue;
      if (Object.entries(match).every(([l, x]) => k.includes(`${l}="${x}"`))) s += v;
    }
    return s;
  };
  return sum(b) - sum(a);
}

export interface Machine {
  readonly cores: number;
  readonly cpu: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
}

export function machine(): Machine {
  let cpu = cpus()[0]?.model.trim() ?? "unknown";
  try {
    cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? cpu;
  } catch {
    /* not Linux */
  }
  return {
    cores: cpus().length,
    cpu,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

/** Load average samples taken during the run: the machine is shared, so the report says how busy it was. */
export class LoadSampler {
  private readonly samples: number[] = [];
  private readonly timer: NodeJS.Timeout;
  constructor(everyMs = 5_000) {
    this.samples.push(loadavg()[0]!);
    this.timer = setInterval(() => this.samples.push(loadavg()[0]!), everyMs);
    this.timer.unref();
  }
  stop(): { min: number; median: number; max: number } {
    clearInterval(this.timer);
    this.samples.push(loadavg()[0]!);
    return { min: Math.min(...this.samples), median: median(this.samples), max: Math.max(...this.samples) };
  }
}

/** A TypeScript child process (through tsx) with an IPC channel; its stdout/stderr are dropped unless asked. */
export interface Child {
  readonly proc: ChildProcess;
  /** The next message of this type (rejects if the child exits first). */
  next<T>(type: string): Promise<T>;
  send(msg: object): void;
  /** Asks the child to stop, waits for it (killing it after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

export function spawnChild(
  script: string,
  options: { execArgv?: string[]; env?: Record<string, string>; inherit?: boolean } = {},
): Child {
  const proc = fork(join(BENCH_DIR, "children", script), [], {
    execArgv: ["--import", "tsx", ...(options.execArgv ?? [])],
    env: { ...process.env, ...(options.env ?? {}) },
    stdio: options.inherit ? ["ignore", "inherit", "inherit", "ipc"] : ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const waiting = new Map<string, { resolve(v: unknown): void; reject(e: Error): void }>();
  const buffered = new Map<string, unknown[]>();
  proc.on("message", (m: { type: string; error?: string }) => {
    if (m.type === "error") {
      for (const w of waiting.values()) w.reject(new Error(`${script}: ${m.error}`));
      waiting.clear();
      return;
    }
    const w = waiting.get(m.type);
    if (w) {
      waiting.delete(m.type);
      w.resolve(m);
    } else buffered.set(m.type, [...(buffered.get(m.type) ?? []), m]);
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.once("exit", (code) => {
    for (const w of waiting.values()) w.reject(new Error(`${script} exited (code ${code}) ${stderr.trim()}`));
    waiting.clear();
  });
  return {
    proc,
    next<T>(type: string) {
      const b = buffered.get(type);
      if (b?.length) return Promise.resolve(b.shift() as T);
      if (proc.exitCode !== null)
        return Promise.reject(new Error(`${script} exited (code ${proc.exitCode}) ${stderr.trim()}`));
      return new Promise<T>((resolve, reject) =>
        waiting.set(type, { resolve: resolve as (v: unknown) => void, reject }),
      );
    },
    send(msg) {
      proc.send(msg);
    },
    async stop(graceMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      if (proc.connected) proc.send({ type: "stop" });
      const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}
