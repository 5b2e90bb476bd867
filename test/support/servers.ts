import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Private server instances for failure tests: each on its own loopback port and data directory, never
 * the shared servers on the standard ports. A test may kill -9, pause and restart them. Every one is
 * killed when its test calls stop(), and, as a last resort, when the test process exits.
 */

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of running) if (p.exitCode === null && p.signalCode === null && p.pid) safeKill(p.pid, "SIGKILL");
});

function safeKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** A free TCP port on loopback (bound, then released; the race window is tiny). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it holds or `timeoutMs` passes (then throws, naming `what`). */
export async function until(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs: number,
  everyMs = 50,
): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (
      await Promise.resolve()
        .then(probe)
        .catch(() => false)
    )
      return performance.now() - start;
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface PrivateServer {
  readonly name: string;
  readonly dir: string;
  readonly port: number;
  /** The running process id, or undefined when it is down. */
  readonly pid: number | undefined;
  /** Starts (again, on the same port and data) and waits until it answers. */
  start(): Promise<void>;
  /** kill -9, and waits until the process is gone. */
  kill9(): Promise<void>;
  /** kill -STOP / kill -CONT. */
  pause(): void;
  resume(): void;
  /** Kills it if running and deletes its data directory. */
  stop(): Promise<void>;
  /** The server's own log (for failure messages). */
  logTail(lines?: number): string;
}

class ServerProcess implements PrivateServer {
  private proc: ChildProcess | undefined;
  private readonly logFile: string;

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly port: number,
    private readonly cmd: string,
    private readonly args: readonly string[],
    private readonly ready: () => Promise<boolean>,
    private readonly startTimeoutMs = 20_000,
  ) {
    this.logFile = join(dir, "server.log");
  }

  get pid(): number | undefined {
    return this.proc && this.proc.exitCode === null && this.proc.signalCode === null ? this.proc.pid : undefined;
  }

  async start(): Promise<void> {
    if (this.pid) throw new Error(`${this.name} is already running`);
    const out = openSync(this.logFile, "a");
    const proc = spawn(this.cmd, this.args, { stdio: ["ignore", out, out], cwd: this.dir });
    closeSync(out);
    this.proc = proc;
    running.add(proc);
    proc.once("exit", () => running.delete(proc));
    let exited = false;
    proc.once("exit", () => (exited = true));
    try {
      await until(
        `${this.name} on port ${this.port}`,
        async () => {
          if (exited) throw new Error(`${this.name} exited at start:\n${this.logTail()}`);
          return this.ready();
        },
        this.startTimeoutMs,
      );
    } catch (e) {
      if (exited) throw new Error(`${this.name} exited at start:\n${this.logTail()}`);
      await this.kill9();
      throw e;
    }
  }

  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || !this.pid) return;
    const gone = new Promise<void>((r) => p.once("exit", () => r()));
    safeKill(p.pid!, "SIGKILL");
    await gone;
  }

  pause(): void {
    if (this.pid) safeKill(this.pid, "SIGSTOP");
  }

  resume(): void {
    if (this.pid) safeKill(this.pid, "SIGCONT");
  }

  async stop(): Promise<void> {
    if (this.pid) safeKill(this.pid, "SIGCONT");
    await this.kill9();
    rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }
}

/** Sends `send` on a fresh connection to 127.0.0.1:port and resolves with what came back first. */
function probeTcp(port: number, send: string | undefined, timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve) => {
    const s = new Socket();
    let buf = "";
    const done = () => {
      s.destroy();
      resolve(buf);
    };
    const t = setTimeout(done, timeoutMs);
    s.once("error", () => {
      clearTimeout(t);
      done();
    });
    s.on("data", (d) => {
      buf += d.toString("latin1");
      if (buf.includes("\n")) {
        clearTimeout(t);
        done();
      }
    });
    s.connect(port, "127.0.0.1", () => {
      if (send) s.write(send);
    });
  });
}

function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `idmap-${name}-`));
}

/** nats-server with JetStream, default durability (acknowledges before fsync; see docs/backends.md). */
export async function natsServer(): Promise<PrivateServer & { url: string }> {
  const dir = tempDir("nats");
  const port = await freePort();
  const s = new ServerProcess(
    "nats-server",
    dir,
    port,
    "nats-server",
    ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", join(dir, "js")],
    async () => {
      const info = await probeTcp(port, undefined);
      return info.startsWith("INFO") && info.includes('"jetstream":true');
    },
  );
  await s.start();
  return Object.assign(s, { url: `nats://127.0.0.1:${port}` });
}

/** A one-member etcd cluster with its own data dir and client and peer ports (fsyncs its WAL: the default). */
export async function etcdServer(): Promise<PrivateServer & { endpoint: string }> {
  const dir = tempDir("etcd");
  const port = await freePort();
  const peer = await freePort();
  const client = `http://127.0.0.1:${port}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const s = new ServerProcess(
    "etcd",
    dir,
    port,
    "etcd",
    [
      "--name",
      "t",
      "--data-dir",
      join(dir, "data"),
      "--listen-client-urls",
      client,
      "--advertise-client-urls",
      client,
      "--listen-peer-urls",
      peerUrl,
      "--initial-advertise-peer-urls",
      peerUrl,
      "--initial-cluster",
      `t=${peerUrl}`,
      "--auto-compaction-mode",
      "revision",
      "--auto-compaction-retention",
      "10000",
      "--log-level",
      "warn",
    ],
    async () => {
      const r = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1_000) });
      return r.ok && (await r.text()).includes('"health":"true"');
    },
  );
  await s.start();
  return Object.assign(s, { endpoint: client });
}

/**
 * redis-server on its own port and dir (extraArgs: e.g. --replicaof). `durable`: the setting docs/backends.md recommends
 * (`--appendonly yes --appendfsync always`); otherwise the machine default that keeps nothing
 * (`--save "" --appendonly no`), the negative control.
 */
export async function redisServer(
  durable: boolean,
  extraArgs: readonly string[] = [],
): Promise<PrivateServer & { url: string }> {
  const dir = tempDir("redis");
  const port = await freePort();
  const persistence = durable
    ? ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    : ["--save", "", "--appendonly", "no"];
  const s = new ServerProcess(
    "redis-server",
    dir,
    port,
    "redis-server",
    ["--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--daemonize", "no", ...persistence, ...extraArgs],
    async () => {
      return (await probeTcp(port, "PING\r\n")).startsWith("+PONG");
    },
  );
  await s.start();
  return Object.assign(s, { url: `redis://127.0.0.1:${port}` });
}
