import { IdentityMapClient, type LookupRequest, type LookupResult } from "@identity-map/client";
import { InvalidArgument } from "../domain/errors.js";
import { parseKind, type IdentityKind } from "../domain/identity-kind.js";
import { normalizeIp } from "../domain/ip.js";
import { normalizeKeyValue } from "../domain/lookup-query.js";
import { followChanges, readSnapshot, RevisionGone, type StreamConnection } from "./change-stream.js";
import type { ChangeEvent, StreamKey, StreamRecord } from "./stream-types.js";

export interface IdentityCacheOptions {
  /** One or more instances of the service (`http://host:8080`); a lost stream reconnects to the next. */
  readonly urls: readonly string[];
  /** Bearer token with the reader role. */
  readonly token?: string;
  readonly fetch?: typeof fetch;
  /** Reconnect delays: doubling from `initialMs` to `maxMs`, with ±20 % jitter. */
  readonly reconnect?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Not current once nothing (no change, no heartbeat) was heard for this long. Default 45 s. */
  readonly staleAfterMs?: number;
  /** A local miss asks the service too (it may know a device only from its relational store). Default false. */
  readonly askServiceOnMiss?: boolean;
  /** Every change applied, after it is applied. */
  readonly onChange?: (change: ChangeEvent) => void;
  /** Connection trouble, for the caller's log. */
  readonly onError?: (error: Error, url: string) => void;
}

interface Entry {
  readonly record: StreamRecord;
  readonly revision: number;
}

/** A lookup answered from the local copy: the service's LookupResult shape, `resolved_via: "cache"`. */
export type LocalLookupResult = LookupResult & { readonly resolved_via: "local" | "service" };

/**
 * A local copy of the map that answers lookups in-process: it loads a snapshot, follows the change
 * stream from the snapshot's revision, reconnects with backoff (to the next instance when given
 * several) and takes a new snapshot when the service answers that its revision is too old. Keys are
 * normalized by the service's own domain code, and a lookup follows the service's rules (keys in
 * the order given, expired weak keys absent, a quarantined MAC ambiguous). While it is not current
 * (starting, reconnecting, silent too long) `lookup` asks the service instead.
 *
 * ```ts
 * const cache = new IdentityCache({ urls: ["http://idmap-1:8080", "http://idmap-2:8080"], token });
 * await cache.start();
 * const r = await cache.lookup({ identity_keys: [{ kind: "mac", value: "aa-bb-cc-dd-ee-ff" }] });
 * ```
 */
export class IdentityCache {
  private entries = new Map<string, Entry>();
  private applied = 0;
  private headSeen = 0;
  private lastHeardMs = 0;
  private connected = false;
  private synced = false;
  private closed = false;
  private urlIndex = 0;
  private failures = 0;
  private readonly abort = new AbortController();
  private readonly clients: IdentityMapClient[];
  private loop: Promise<void> | undefined;
  private firstCurrent: { promise: Promise<void>; resolve: () => void };

  constructor(private readonly options: IdentityCacheOptions) {
    if (options.urls.length === 0) throw new InvalidArgument("urls", "at least one service URL is required");
    this.clients = options.urls.map(
      (baseUrl) =>
        new IdentityMapClient({
          baseUrl,
          ...(options.token ? { token: options.token } : {}),
          ...(options.fetch ? { fetch: options.fetch } : {}),
        }),
    );
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.firstCurrent = { promise, resolve };
  }

  /** Starts loading and following; resolves once the copy is current the first time. */
  start(): Promise<void> {
    this.loop ??= this.run();
    return this.firstCurrent.promise;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    await this.loop?.catch(() => {});
  }

  /** The revision the copy is at: every change through it is applied. */
  get revision(): number {
    return this.applied;
  }

  /** Bindings held. */
  get size(): number {
    return this.entries.size;
  }

  /** Loaded, following, heard from lately, and not behind the newest revision the service named. */
  get current(): boolean {
    return (
      this.synced &&
      this.connected &&
      Date.now() - this.lastHeardMs < (this.options.staleAfterMs ?? 45_000) &&
      this.applied >= this.headSeen
    );
  }

  /** How far behind: revisions behind the newest one heard of, and time since the service was last heard. */
  lag(): { revisions: number; sinceHeardMs: number } {
    return {
      revisions: Math.max(0, this.headSeen - this.applied),
      sinceHeardMs: this.lastHeardMs === 0 ? Number.POSITIVE_INFINITY : Date.now() - this.lastHeardMs,
    };
  }

  /**
   * The service's lookup, answered locally while current, else by the service. Same request and
   * result as `IdentityMapClient.lookup` (a request with a `namespace` always goes to the service).
   */
  async lookup(request: LookupRequest): Promise<LocalLookupResult> {
    if (this.current && !request.namespace) {
      const local = this.lookupLocal(request);
      if (local.found || local.ambiguous || !this.options.askServiceOnMiss) return local;
    }
    const client = this.clients[this.urlIndex % this.clients.length]!;
    return { ...(await client.lookup(request)), resolved_via: "service" };
  }

  /** The lookup from the local copy only, whether current or not. Bad keys throw InvalidArgument naming them. */
  lookupLocal(request: LookupRequest): LocalLookupResult {
    const keys: StreamKey[] = request.identity_keys.map((k, i) => {
      const kind = parseKind(String(k.kind ?? ""));
      if (!kind) throw new InvalidArgument(`identity_keys[${i}].kind`, `unknown kind ${JSON.stringify(k.kind)}`);
      const raw = String(k.value ?? "");
      // The copy holds normalized keys only, so a value found as given is already normalized (and
      // valid): the normalization, which costs more than the lookup, is skipped.
      if (this.entries.has(id(kind, raw))) return { kind, value: raw };
      return { kind, value: normalizeKeyValue(kind, raw, `identity_keys[${i}].value`) };
    });
    const hint = (request.ip_hint ?? "").trim();
    if (hint !== "") {
      const ip = normalizeIp(hint);
      if (!ip) throw new InvalidArgument("ip_hint", `${JSON.stringify(hint)} is not an IP address`);
      keys.push({ kind: "ip", value: ip });
    }
    if (keys.length === 0)
      throw new InvalidArgument("identity_keys", "at least one identity key or an ip_hint is required");
    return this.find(keys);
  }

  /** The binding of one already-normalized key, or null (absent or expired): the fastest local read. */
  get(kind: IdentityKind, value: string): { record: StreamRecord; revision: number } | null {
    const e = this.entries.get(id(kind, value));
    if (!e) return null;
    const exp = e.record.expires_at_unix_millis;
    return exp > 0 && exp <= Date.now() ? null : e;
  }

  private find(keys: readonly StreamKey[]): LocalLookupResult {
    const now = Date.now();
    let ambiguous: LocalLookupResult["ambiguous"];
    for (const key of keys) {
      const e = this.entries.get(id(key.kind, key.value));
      if (!e) continue;
      const exp = e.record.expires_at_unix_millis;
      if (exp > 0 && exp <= now) continue;
      if ((e.record.quarantined_since_unix_millis ?? 0) > 0 || (e.record.contested_until_unix_millis ?? 0) > now) {
        ambiguous ??= { key, candidates: [...(e.record.candidates ?? [])] };
        continue;
      }
      return {
        found: true,
        record: e.record,
        matched_key: key,
        revision: e.revision,
        hydrated: false,
        resolved_via: "local",
      };
    }
    return { found: false, revision: 0, hydrated: false, resolved_via: "local", ...(ambiguous ? { ambiguous } : {}) };
  }

  private connection(): StreamConnection {
    return {
      baseUrl: this.options.urls[this.urlIndex % this.options.urls.length]!,
      ...(this.options.token ? { token: this.options.token } : {}),
      ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
      signal: this.abort.signal,
    };
  }

  private async run(): Promise<void> {
    let needSnapshot = true;
    while (!this.closed) {
      const c = this.connection();
      try {
        if (needSnapshot) {
          this.synced = false;
          await this.loadSnapshot(c);
          needSnapshot = false;
        }
        for await (const item of followChanges(c, this.applied)) {
          this.connected = true;
          this.failures = 0;
          this.lastHeardMs = Date.now();
          if (item.type === "change") this.apply(item.change);
          else {
            this.headSeen = Math.max(this.headSeen, item.heartbeat.revision);
            if (item.heartbeat.current) this.applied = Math.max(this.applied, item.heartbeat.revision);
          }
          if (this.current) this.firstCurrent.resolve();
        }
      } catch (e) {
        if (this.closed) break;
        if (e instanceof RevisionGone) needSnapshot = true;
        this.options.onError?.(e instanceof Error ? e : new Error(String(e)), c.baseUrl);
      }
      this.connected = false;
      if (this.closed) break;
      // A stream that ended or failed: try the next instance, after a pause that grows while nothing answers.
      this.urlIndex++;
      await this.pause(this.backoff(this.failures++));
    }
    this.connected = false;
  }

  private async loadSnapshot(c: StreamConnection): Promise<void> {
    const fresh = new Map<string, Entry>();
    const { revision } = await readSnapshot(c, (lines) => {
      for (const l of lines) fresh.set(id(l.key.kind, l.key.value), { record: l.record, revision: l.revision });
    });
    this.entries = fresh;
    this.applied = revision;
    this.headSeen = Math.max(this.headSeen, revision);
    this.synced = true;
  }

  /** Applies a change unless the copy already holds that key at a newer revision (a snapshot's overlap). */
  private apply(change: ChangeEvent): void {
    const k = id(change.key.kind, change.key.value);
    const held = this.entries.get(k);
    if (!held || held.revision < change.revision) {
      if (change.operation === "delete" || !change.record) this.entries.delete(k);
      else this.entries.set(k, { record: change.record, revision: change.revision });
    }
    this.applied = Math.max(this.applied, change.revision);
    this.headSeen = Math.max(this.headSeen, change.revision);
    this.options.onChange?.(change);
  }

  private backoff(attempt: number): number {
    const initial = this.options.reconnect?.initialMs ?? 100;
    const max = this.options.reconnect?.maxMs ?? 10_000;
    const base = Math.min(max, initial * 2 ** attempt);
    return Math.round(base * (0.8 + 0.4 * Math.random()));
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.abort.signal.addEventListener(
        "abort",
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
  }
}

function id(kind: string, value: string): string {
  return `${kind}\u0000${value}`;
}
