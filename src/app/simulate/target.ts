import { checkConsistency, type Finding } from "../check/consistency-check.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildRestApp } from "../../adapters/rest/rest-app.js";
import { decodeBinding } from "../bindings/binding-store.js";
import { compact } from "../bindings/compaction.js";
import { loadConfig } from "../config.js";
import { createApp, type App } from "../container.js";
import { isLive } from "../../domain/binding.js";
import type { DeviceUpdate } from "../../domain/device-update.js";
import { parseKeyPath } from "../../domain/key-path.js";
import type { Clock } from "../../ports/clock.js";
import type { PublishResultJson } from "./truth.js";

export interface LookupJson {
  readonly identity_keys: readonly { readonly kind: string; readonly value: string }[];
}

export interface LookupResultJson {
  readonly found: boolean;
  readonly record?: { readonly canonical_device_id: string };
  /** A quarantined (shared) identifier: the devices it names. */
  readonly ambiguous?: { readonly candidates: readonly string[] };
}

/** What the map holds at the end (in-process only: it needs the KV itself). */
export interface BindingCensus {
  readonly entries: number;
  /** Past their expiry, waiting for compaction. */
  readonly expired: number;
  readonly live: number;
  /** Live `device-id` bindings of retired ids, pointing at the device they were merged into. */
  readonly redirects: number;
  /** Live bindings by kind, redirects left out. */
  readonly by_kind: Readonly<Record<string, number>>;
  /** Live `device-id` bindings naming themselves: devices the map holds now. */
  readonly devices: number;
}

/** The service under simulation, spoken to over REST. */
export interface SimTarget {
  readonly description: string;
  /** True when the service's clock follows simulated time (in-process), so lookups can run mid-run. */
  readonly simulatedClock: boolean;
  setTime(ms: number): void;
  publish(updates: readonly DeviceUpdate[]): Promise<PublishResultJson[]>;
  lookup(lookups: readonly LookupJson[]): Promise<LookupResultJson[]>;
  metrics(): Promise<string>;
  /** Periodic upkeep `idmap serve` would do (compaction); in-process only. */
  maintain(atMs: number): Promise<void>;
  bindings(atMs: number): Promise<BindingCensus | null>;
  /** The consistency checker's findings on the service's stores; null when they are out of reach. */
  check(atMs: number): Promise<readonly Finding[] | null>;
  /** Requests retried after a transient failure (retrying a publish batch is idempotent). */
  readonly retries: number;
  close(): Promise<void>;
}

/** A running service at `url`. Its clock is the real one: simulated time must end near now. */
export class RestTarget implements SimTarget {
  readonly simulatedClock: boolean = false;
  retries = 0;

  constructor(
    readonly url: string,
    private readonly token?: string,
    readonly description = `service at ${url}`,
  ) {}

  setTime(_ms: number): void {}

  async publish(updates: readonly DeviceUpdate[]): Promise<PublishResultJson[]> {
    const r = await this.post<{ results: PublishResultJson[] }>("/v1/device-updates", { updates });
    return r.results;
  }

  async lookup(lookups: readonly LookupJson[]): Promise<LookupResultJson[]> {
    const r = await this.post<{ results: LookupResultJson[] }>("/v1/canonical-devices/batch-lookup", { lookups });
    return r.results;
  }

  async metrics(): Promise<string> {
    const r = await fetch(new URL("/metrics", this.url), { headers: this.headers() });
    if (!r.ok) throw new Error(`GET /metrics: HTTP ${r.status}`);
    return r.text();
  }

  async maintain(_atMs: number): Promise<void> {}

  async bindings(_atMs: number): Promise<BindingCensus | null> {
    return null;
  }

  async check(_atMs: number): Promise<readonly Finding[] | null> {
    return null;
  }

  async close(): Promise<void> {}

  private headers(): Record<string, string> {
    return { "content-type": "application/json", ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) };
  }

  private async post<T>(path: string, body: unknown): Promise<T> {
    const payload = JSON.stringify(body);
    for (let attempt = 1; ; attempt++) {
      let status = 0;
      let text = "";
      try {
        const r = await fetch(new URL(path, this.url), { method: "POST", headers: this.headers(), body: payload });
        status = r.status;
        text = await r.text();
        if (r.ok) return JSON.parse(text) as T;
      } catch (e) {
        text = e instanceof Error ? e.message : String(e);
      }
      const transient = status === 0 || status === 503;
      if (!transient || attempt >= 4)
        throw new Error(`POST ${path}: ${status ? `HTTP ${status}` : "no answer"}: ${text.slice(0, 300)}`);
      this.retries++;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}

class SimClock implements Clock {
  constructor(public now: number) {}
  nowMs(): number {
    return this.now;
  }
}

/**
 * A service started in this process on embedded storage in a temp dir, served over REST on a
 * loopback port. Its clock follows simulated time, so lookups and expiry judge the map as it
 * stands at that moment of the simulation.
 */
export class InProcessTarget extends RestTarget {
  override readonly simulatedClock = true;

  private constructor(
    url: string,
    private readonly app: App,
    private readonly server: FastifyInstance,
    private readonly clock: SimClock,
    private readonly dir: string,
    description: string,
  ) {
    super(url, undefined, description);
  }

  /** `env`: settings on top of the simulation's (freshness window, TTL, sync mode...). */
  static async start(startMs: number, env: Readonly<Record<string, string>> = {}): Promise<InProcessTarget> {
    const dir = mkdtempSync(join(tmpdir(), "idmap-sim-"));
    const config = loadConfig({
      IDMAP_LOG_LEVEL: "warn",
      // A throwaway directory: syncing every commit to disk buys nothing here and halves throughput.
      IDMAP_EMBEDDED_SYNC: "normal",
      ...env,
      IDMAP_DATA_DIR: dir,
      IDMAP_KV_BACKEND: "embedded",
      IDMAP_DB: "sqlite",
      CANONICAL_IDENTITY_MAP_ENABLED: "on",
      IDMAP_FRONTENDS: "rest",
    });
    const clock = new SimClock(startMs);
    const app = await createApp(config, { clock });
    const server = await buildRestApp(app);
    const url = await server.listen({ host: "127.0.0.1", port: 0 });
    const description = `in-process service on ${url} (embedded KV, sync ${config.embeddedSync}, in ${dir})`;
    return new InProcessTarget(url, app, server, clock, dir, description);
  }

  override setTime(ms: number): void {
    this.clock.now = ms;
  }

  override async maintain(atMs: number): Promise<void> {
    await compact(this.app.store, this.app.devices, atMs, this.app.metrics, this.app.log);
  }

  override async bindings(atMs: number): Promise<BindingCensus> {
    const { entries } = await this.app.kv.list(`${this.app.config.namespace}/`);
    let expired = 0;
    let redirects = 0;
    let devices = 0;
    const byKind: Record<string, number> = {};
    for (const e of entries) {
      const b = decodeBinding(e.value, e.revision);
      if (!isLive(b, atMs)) {
        expired++;
        continue;
      }
      const { key } = parseKeyPath(e.key);
      if (key.kind === "device-id") {
        if (b.record.canonicalDeviceId !== key.value) {
          redirects++;
          continue;
        }
        devices++;
      }
      byKind[key.kind] = (byKind[key.kind] ?? 0) + 1;
    }
    return { entries: entries.length, expired, live: entries.length - expired, redirects, by_kind: byKind, devices };
  }

  override async check(atMs: number): Promise<readonly Finding[]> {
    return checkConsistency({
      kv: this.app.kv,
      namespace: this.app.config.namespace,
      devices: [this.app.devices],
      nowMs: atMs,
    });
  }

  override async close(): Promise<void> {
    await this.server.close();
    await this.app.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
