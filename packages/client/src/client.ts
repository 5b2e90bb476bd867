import { IdentityMapApiError, IdentityMapConnectionError } from "./errors.js";
import { backoffMs, DEFAULT_RETRY, type RetryPolicy, sleep } from "./retry.js";
import type {
  ApiErrorBody,
  AsOfResult,
  BatchLookupRequest,
  CanonicalDevice,
  DeviceList,
  DeviceListQuery,
  DeviceUpdate,
  HistoryPage,
  HistoryQuery,
  IdentityKey,
  ListedDevice,
  LookupQuery,
  LookupRequest,
  LookupResult,
  OperatorResult,
  PublishResult,
  ResolveResult,
} from "./types.js";

export interface ClientOptions {
  /** `http://host:8080`; paths are appended to it. */
  readonly baseUrl: string;
  /** Bearer token (IDMAP_AUTH_TOKENS on the service). */
  readonly token?: string;
  /** Per-attempt deadline; 10 s by default. */
  readonly timeoutMs?: number;
  /** Retries of a 503 or a failed connection; every call is safe to repeat (publish is idempotent). */
  readonly retry?: RetryPolicy;
  /** A fetch implementation (the global one by default). */
  readonly fetch?: typeof fetch;
}

type Query = Readonly<Record<string, string | number | boolean | undefined>>;

/**
 * A typed client for the identity-map REST API. Lookups, listing and resolve need the `reader` role,
 * publish `writer`. A GET of one thing that does not exist comes back as null; every other failure
 * is an IdentityMapApiError (with the service's code) or an IdentityMapConnectionError.
 */
export class IdentityMapClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;
  private readonly retry: Required<RetryPolicy>;

  constructor(private readonly options: ClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, "");
    this.fetch = options.fetch ?? globalThis.fetch;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  /** Publishes a batch; one result per update, in order. */
  async publish(updates: readonly DeviceUpdate[]): Promise<PublishResult[]> {
    return (await this.call<{ results: PublishResult[] }>("POST", "/v1/device-updates", { body: { updates } })).results;
  }

  /** The same resolution as publish, read-only: canonical ids for sweep configs and the like. */
  async resolve(updates: readonly DeviceUpdate[]): Promise<ResolveResult[]> {
    const path = "/v1/device-updates/resolve";
    return (await this.call<{ results: ResolveResult[] }>("POST", path, { body: { updates } })).results;
  }

  /** Keys in the order given; a miss is `found: false`. */
  async lookup(request: LookupRequest): Promise<LookupResult> {
    return this.call<LookupResult>("POST", "/v1/canonical-devices/lookup", { body: request });
  }

  /** The GET form: parameters strongest first; null on a miss. */
  async lookupBy(query: LookupQuery): Promise<LookupResult | null> {
    return this.call<LookupResult>("GET", "/v1/canonical-devices/lookup", { query, nullOn404: true });
  }

  /** Many lookups in one request; results in request order. */
  async batchLookup(lookups: BatchLookupRequest["lookups"], namespace?: string): Promise<LookupResult[]> {
    const body = { lookups, ...(namespace !== undefined ? { namespace } : {}) };
    return (await this.call<{ results: LookupResult[] }>("POST", "/v1/canonical-devices/batch-lookup", { body }))
      .results;
  }

  /** A device, every key bound to it, and `redirected_to` when it was merged; null when unknown. */
  async getDevice(deviceId: string): Promise<CanonicalDevice | null> {
    return this.call<CanonicalDevice>("GET", `/v1/canonical-devices/${encodeURIComponent(deviceId)}`, {
      nullOn404: true,
    });
  }

  /** One page of a device's binding changes, newest first; pass `next` as `before` for the next page. */
  async history(deviceId: string, query: HistoryQuery = {}): Promise<HistoryPage> {
    return this.call<HistoryPage>("GET", `/v1/canonical-devices/${encodeURIComponent(deviceId)}/history`, { query });
  }

  /** One page of canonical devices; pass `next_cursor` as `cursor` for the next page. */
  async listDevices(query: DeviceListQuery = {}): Promise<DeviceList> {
    return this.call<DeviceList>("GET", "/v1/canonical-devices", { query });
  }

  /**
   * Every device matching the filters, page after page, each with its keys: an export that holds one
   * page in memory at a time.
   */
  async *exportDevices(filters: Omit<DeviceListQuery, "cursor"> = {}): AsyncGenerator<ListedDevice> {
    let cursor: string | undefined;
    do {
      const page = await this.listDevices({ limit: 1000, ...filters, ...(cursor !== undefined ? { cursor } : {}) });
      yield* page.devices;
      cursor = page.next_cursor;
    } while (cursor !== undefined);
  }

  /** Who held an identifier at `at` (RFC 3339), from the audit trail; null when nobody did. */
  async lookupAsOf(query: Omit<LookupQuery, "at">, at: string): Promise<AsOfResult | null> {
    return this.call<AsOfResult>("GET", "/v1/canonical-devices/lookup", { query: { ...query, at }, nullOn404: true });
  }

  /** Merges `deviceId` into `into` (writer): its keys move there, pinned, and its id redirects there. */
  async merge(deviceId: string, into: string): Promise<OperatorResult> {
    return this.call<OperatorResult>("POST", `${devicePath(deviceId)}/merge`, { body: { into } });
  }

  /** Splits keys off `deviceId` into a new device (writer), pinned there. */
  async split(deviceId: string, keys: readonly IdentityKey[]): Promise<OperatorResult> {
    return this.call<OperatorResult>("POST", `${devicePath(deviceId)}/split`, { body: { keys } });
  }

  /** Pins a key where it stands (writer): sightings no longer move it. Idempotent. */
  async pin(deviceId: string, key: IdentityKey): Promise<void> {
    await this.call("PUT", pinPath(deviceId, key), {});
  }

  /** Lifts a pin (writer); an IdentityMapApiError with status 404 when the key is not pinned there. */
  async unpin(deviceId: string, key: IdentityKey): Promise<void> {
    await this.call("DELETE", pinPath(deviceId, key), {});
  }

  private async call<T>(method: Method, path: string, req: { body?: unknown; query?: Query }): Promise<T>;
  private async call<T>(
    method: Method,
    path: string,
    req: { body?: unknown; query?: Query; nullOn404: true },
  ): Promise<T | null>;
  private async call<T>(
    method: Method,
    path: string,
    req: { body?: unknown; query?: Query; nullOn404?: boolean },
  ): Promise<T | null> {
    const url = `${this.base}${path}${queryString(req.query)}`;
    const headers: Record<string, string> = { accept: "application/json" };
    if (req.body !== undefined) headers["content-type"] = "application/json";
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const init = { method, headers, ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}) };
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= this.retry.attempts;
      let res: Response;
      try {
        res = await this.fetch(url, { ...init, signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000) });
      } catch (cause) {
        if (last) throw new IdentityMapConnectionError(`${method} ${url}: ${String(cause)}`, { cause });
        await sleep(backoffMs(this.retry, attempt));
        continue;
      }
      if (res.status === 404 && req.nullOn404) return null;
      const text = await res.text();
      if (res.ok) return (text === "" ? undefined : JSON.parse(text)) as T;
      const error = apiError(res, text);
      if (!error.retryable || last) throw error;
      await sleep(backoffMs(this.retry, attempt));
    }
  }
}

type Method = "GET" | "POST" | "PUT" | "DELETE";

const devicePath = (deviceId: string) => `/v1/canonical-devices/${encodeURIComponent(deviceId)}`;
const pinPath = (deviceId: string, k: IdentityKey) =>
  `${devicePath(deviceId)}/pins/${encodeURIComponent(k.kind)}/${encodeURIComponent(k.value)}`;

function queryString(query: Query | undefined): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s === "" ? "" : `?${s}`;
}

function apiError(res: Response, text: string): IdentityMapApiError {
  let body: Partial<ApiErrorBody> | undefined;
  try {
    body = JSON.parse(text) as Partial<ApiErrorBody>;
  } catch {
    body = undefined;
  }
  const e = body?.error;
  return new IdentityMapApiError(
    res.status,
    e?.code ?? `http_${res.status}`,
    e?.message ?? (text || res.statusText),
    e?.field,
  );
}
