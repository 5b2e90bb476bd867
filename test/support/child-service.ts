import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { until } from "./servers.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(ROOT, "src/app/cli.ts");

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, "SIGKILL");
});

/** Runs `idmap <args>` from the sources (tsx) with exactly `env` on top of PATH, and returns its output. */
export async function runCli(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  clearTimeout(timer);
  children.delete(child);
  return { code, stdout, stderr };
}

/** `idmap serve` as a child process (the service itself, to be killed with SIGKILL and started again). */
export class ChildService {
  private proc: ChildProcess | undefined;

  constructor(
    readonly port: number,
    private readonly env: Record<string, string>,
    private readonly logFile: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    const p = this.proc;
    return p && p.exitCode === null && p.signalCode === null ? p.pid : undefined;
  }

  /** Starts it and waits until /healthz answers; returns how long that took. */
  async start(timeoutMs = 30_000): Promise<number> {
    const out = openSync(this.logFile, "a");
    const env = {
      PATH: process.env.PATH ?? "",
      ...this.env,
      IDMAP_REST_PORT: String(this.port),
      IDMAP_FRONTENDS: "rest",
    };
    const proc = spawn(process.execPath, ["--import", "tsx", CLI, "serve"], {
      cwd: ROOT,
      env,
      stdio: ["ignore", out, out],
    });
    closeSync(out);
    this.proc = proc;
    children.add(proc);
    proc.once("exit", () => children.delete(proc));
    return until(
      "idmap serve to answer /healthz",
      async () => {
        if (!this.pid) throw new Error(`idmap serve exited:\n${this.logTail()}`);
        const r = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1_000) });
        return r.ok;
      },
      timeoutMs,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${this.logTail()}`);
    });
  }

  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || !this.pid) return;
    const gone = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill("SIGKILL");
    await gone;
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(this.logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }
}

/** A request to a service over HTTP, timed; a refused or reset connection is status 0. */
export async function httpJson(
  url: string,
  init: { method?: string; body?: unknown } = {},
  timeoutMs = 10_000,
): Promise<{ status: number; body: any; ms: number }> {
  const start = performance.now();
  try {
    const r = await fetch(url, {
      method: init.method ?? "GET",
      ...(init.body !== undefined
        ? { body: JSON.stringify(init.body), headers: { "content-type": "application/json" } }
        : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : undefined, ms: performance.now() - start };
  } catch (e) {
    return {
      status: 0,
      body: { error: { code: "connection", message: e instanceof Error ? e.message : String(e) } },
      ms: performance.now() - start,
    };
  }
}
