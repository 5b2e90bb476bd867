import type { DeviceUpdate } from "../domain/device-update.js";
import type { IdentityKind } from "../domain/identity-kind.js";

/** JSON shapes of the REST API, as the client sees them: the service's own types. */
export type { PublishResult, ResolveResult } from "../ports/identity-service.js";
export type { Tombstone } from "../domain/resolution.js";
import type { PublishResult, ResolveResult } from "../ports/identity-service.js";

export interface CanonicalRecord {
  readonly canonical_device_id: string;
  readonly partition: string;
  readonly metadata_hash: string;
  readonly updated_at_unix_millis: number;
  readonly attributes: Readonly<Record<string, string>>;
}

/** A key as sent: `kind` is a kind name (`mac`) or its proto name (`IDENTITY_KIND_MAC`). */
export interface KeyJson {
  readonly kind: IdentityKind | string;
  readonly value: string;
}

export interface LookupRequest {
  readonly identity_keys: readonly KeyJson[];
  readonly ip_hint?: string;
  readonly namespace?: string;
}

export interface LookupResult {
  readonly found: boolean;
  readonly record?: CanonicalRecord;
  readonly matched_key?: KeyJson;
  /** The KV revision of the matched binding; 0 when the relational store answered. */
  readonly revision: number;
  readonly hydrated: boolean;
}

/** The GET lookup's parameters; the service tries them strongest first. */
export interface LookupQuery {
  readonly mac?: string;
  readonly ip?: string;
  readonly partition?: string;
  readonly armis_id?: string;
  readonly netbox_id?: string;
  readonly device_id?: string;
}

export interface DeviceView {
  readonly device_id: string;
  readonly redirected_to?: string;
  readonly record: CanonicalRecord;
  readonly revision: number;
  readonly keys: readonly KeyJson[];
}

export interface ClientOptions {
  /** `http://host:8080`; paths are appended to it. */
  readonly baseUrl: string;
  /** Bearer token (IDMAP_AUTH_TOKENS on the service). */
  readonly token?: string;
  /** Per-request deadline; 10 s by default. */
  readonly timeoutMs?: number;
  /** A fetch implementation (the global one by default). */
  readonly fetch?: typeof fetch;
}

/** A non-2xx answer, with the service's error code (`invalid_argument`, `kv_unavailable`, ...). */
export class IdentityMapApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "IdentityMapApiError";
  }
}

/**
 * A typed client for the REST API. Lookups and resolve need the `reader` role, publish `writer`.
 * GET misses (404) come back as null; every other failure is an IdentityMapApiError.
 */
export class IdentityMapClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, "");
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /** Publishes a batch; one result per update, in order. */
  async publish(updates: readonly DeviceUpdate[]): Promise<PublishResult[]> {
    return (await this.call<{ results: PublishResult[] }>("POST", "/v1/device-updates", { updates })).results;
  }

  /** The same resolution as publish, read-only: canonical ids for sweep configs and the like. */
  async resolve(updates: readonly DeviceUpdate[]): Promise<ResolveResult[]> {
    return (await this.call<{ results: ResolveResult[] }>("POST", "/v1/device-updates/resolve", { updates })).results;
  }

  /** Keys in the order given; a miss is `found: false`. */
  async lookup(request: LookupRequest): Promise<LookupResult> {
    return this.call<LookupResult>("POST", "/v1/canonical-devices/lookup", request);
  }

  /** The GET form: parameters strongest first; null on a miss. */
  async lookupBy(query: LookupQuery): Promise<LookupResult | null> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (typeof v === "string" && v !== "") q.set(k, v);
    return this.call<LookupResult>("GET", `/v1/canonical-devices/lookup?${q.toString()}`, undefined, true);
  }

  /** Many lookups in one request; results in request order. */
  async batchLookup(lookups: readonly Omit<LookupRequest, "namespace">[], namespace?: string): Promise<LookupResult[]> {
    const body = { lookups, ...(namespace !== undefined ? { namespace } : {}) };
    return (await this.call<{ results: LookupResult[] }>("POST", "/v1/canonical-devices/batch-lookup", body)).results;
  }

  /** A device, every key bound to it, and `redirected_to` when it was merged; null when unknown. */
  async getDevice(deviceId: string): Promise<DeviceView | null> {
    return this.call<DeviceView>("GET", `/v1/canonical-devices/${encodeURIComponent(deviceId)}`, undefined, true);
  }

  private async call<T>(method: "GET" | "POST", path: string, body: unknown, nullOn404: true): Promise<T | null>;
  private async call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T>;
  private async call<T>(method: "GET" | "POST", path: string, body?: unknown, nullOn404 = false): Promise<T | null> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const res = await this.fetch(`${this.base}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
    });
    if (res.status === 404 && nullOn404) return null;
    const text = await res.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
      throw new IdentityMapApiError(
        res.status,
        e?.code ?? `http_${res.status}`,
        e?.message ?? (text || res.statusText),
        e?.field,
      );
    }
    return json as T;
  }
}
