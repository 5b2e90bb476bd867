import { readFileSync } from "node:fs";
import { closest, distance } from "fastest-levenshtein";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../domain/errors.js";
import { DEFAULT_NAMESPACE, validateNamespace } from "../domain/key-path.js";
import { normalizeMac } from "../domain/mac.js";
import type { Role } from "../ports/identity-service.js";
import { parseSubjectRoles } from "./auth.js";

export const KV_BACKENDS = ["embedded", "memory", "jetstream", "etcd", "redis"] as const;
export type KvBackendName = (typeof KV_BACKENDS)[number];
export const DB_DIALECTS = ["sqlite", "postgres"] as const;
export type DbDialect = (typeof DB_DIALECTS)[number];
export const MODES = ["off", "shadow", "on"] as const;
export type MapMode = (typeof MODES)[number];
export type Frontend = "rest" | "grpc";
export type { Role };

export interface Config {
  readonly host: string;
  readonly restPort: number;
  readonly grpcPort: number;
  readonly frontends: readonly Frontend[];
  readonly kvBackend: KvBackendName;
  readonly db: DbDialect;
  readonly dataDir: string;
  readonly databaseUrl: string;
  readonly natsUrl: string;
  readonly kvBucket: string;
  readonly kvReplicas: number;
  readonly kvHistory: number;
  readonly kvMaxBytes: number;
  readonly etcdEndpoints: readonly string[];
  readonly redisUrl: string;
  readonly namespace: string;
  readonly mode: MapMode;
  readonly authTokens: ReadonlyMap<string, Role>;
  /** TLS on both front-ends (PEM files); with caFile, gRPC requires client certificates signed by it (mTLS). */
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly caFile: string } | null;
  /** Verified client-certificate subject (canonical form, see auth.ts) → role, on gRPC. */
  readonly mtlsRoles: ReadonlyMap<string, Role>;
  /** Listen on a non-loopback IDMAP_HOST with no auth configured, on purpose. */
  readonly allowUnauthenticated: boolean;
  readonly logLevel: string;
  readonly maxBatch: number;
  readonly bodyLimitBytes: number;
  readonly requestTimeoutMs: number;
  /** Identity keys one lookup may carry, and all the lookups of one batch together (defect 2 of issue 12). */
  readonly maxLookupKeys: number;
  readonly maxBatchKeys: number;
  /** How far in the future an observation's timestamp may be before it is refused (clock skew). */
  readonly maxClockSkewMs: number;
  /** Namespaces other than IDMAP_NAMESPACE that lookups may hydrate (write relational answers into). */
  readonly hydrateNamespaces: ReadonlySet<string>;
  readonly freshnessWindowMs: number;
  readonly weakKeyTtlMs: number;
  /** A MAC taken this many times between evidently different devices within the window is quarantined. */
  readonly sharedMacRebinds: number;
  readonly sharedMacWindowMs: number;
  /** Rebinds within the window after which lookups by a MAC answer ambiguous (ADR 0022). */
  readonly sharedMacAmbiguousAfter: number;
  readonly compactIntervalMs: number;
  /** How long the audit trail keeps entries (history, as-of lookups); each key's latest entry stays. */
  readonly auditRetentionMs: number;
  /** A publish intent unsettled this long is audited from the map (ADR 0017); checked every half of it. */
  readonly auditRecoveryAgeMs: number;
  readonly addressAuthorities: ReadonlySet<string>;
  readonly deniedMacs: ReadonlySet<string>;
  readonly embeddedSync: "full" | "normal";
  /** Bindings the local cache may hold (IDMAP_CACHE_MAX_BINDINGS); undefined: it mirrors the whole map. */
  readonly cacheMaxBindings: number | undefined;
  /** Every setting as given, for components added later; read through `setting()`. */
  readonly raw: Readonly<Record<string, string>>;
}

/** Shorter bearer tokens are refused at start. */
export const MIN_TOKEN_LENGTH = 16;

/** Names and defaults. The environment wins over the YAML file. */
const DEFAULTS: Record<string, string> = {
  IDMAP_HOST: "127.0.0.1",
  IDMAP_REST_PORT: "8080",
  IDMAP_GRPC_PORT: "50051",
  IDMAP_FRONTENDS: "rest,grpc",
  IDMAP_KV_BACKEND: "embedded",
  IDMAP_DB: "sqlite",
  IDMAP_DATA_DIR: "./data",
  IDMAP_DATABASE_URL: "",
  IDMAP_NATS_URL: "nats://127.0.0.1:4222",
  IDMAP_KV_BUCKET: "identity_map",
  // Empty: 1 replica on one NATS server, 3 when IDMAP_NATS_URL names several (a cluster).
  IDMAP_KV_REPLICAS: "",
  IDMAP_KV_HISTORY: "1",
  IDMAP_KV_MAX_BYTES: "-1",
  IDMAP_ETCD_ENDPOINTS: "http://127.0.0.1:2379",
  IDMAP_REDIS_URL: "redis://127.0.0.1:6379",
  IDMAP_NAMESPACE: DEFAULT_NAMESPACE,
  CANONICAL_IDENTITY_MAP_ENABLED: "off",
  IDMAP_AUTH_TOKENS: "",
  IDMAP_TLS_CERT: "",
  IDMAP_TLS_KEY: "",
  IDMAP_TLS_CA: "",
  IDMAP_MTLS_ROLES: "",
  IDMAP_ALLOW_UNAUTHENTICATED: "false",
  IDMAP_LOG_LEVEL: "info",
  IDMAP_MAX_BATCH: "10000",
  IDMAP_BODY_LIMIT: "67108864",
  IDMAP_REQUEST_TIMEOUT: "10s",
  IDMAP_MAX_LOOKUP_KEYS: "64",
  IDMAP_MAX_BATCH_KEYS: "20000",
  IDMAP_MAX_CLOCK_SKEW: "5m",
  IDMAP_HYDRATE_NAMESPACES: "",
  IDMAP_FRESHNESS_WINDOW: "15m",
  IDMAP_WEAK_KEY_TTL: "24h",
  IDMAP_SHARED_MAC_REBINDS: "2",
  IDMAP_SHARED_MAC_WINDOW: "7d",
  IDMAP_SHARED_MAC_AMBIGUOUS_AFTER: "1",
  IDMAP_COMPACT_INTERVAL: "10m",
  IDMAP_AUDIT_RETENTION: "90d",
  IDMAP_AUDIT_RECOVERY_AGE: "2m",
  IDMAP_ADDRESS_AUTHORITIES: "netbox",
  IDMAP_DENIED_MACS: "",
  IDMAP_EMBEDDED_SYNC: "full",
  IDMAP_CACHE_MAX_BINDINGS: "",
  // The change stream and webhooks (issue 15; read by src/app/changes/stream-settings.ts).
  IDMAP_CHANGES_HEARTBEAT: "15s",
  IDMAP_CHANGES_BUFFER: "10000",
  IDMAP_WEBHOOK_URLS: "",
  IDMAP_WEBHOOK_SECRET: "",
  IDMAP_WEBHOOK_RETRY_MAX: "5m",
};

/**
 * IDMAP_* variables that belong to the project's tooling, not the service (tests, benchmarks,
 * scripts/start-servers.sh, the client README's example): set in the same shell, they are not typos.
 */
const NOT_SERVICE_SETTINGS = /^IDMAP_(TEST_|BENCH_|START_TIMEOUT$|ETCD_DATA_DIR$|URL$|TOKEN$)/;

/** The known setting nearest to a misspelled one (`IDMAP_REST_PROT` -> `IDMAP_REST_PORT`), if one is near. */
function nearestSetting(name: string): string | undefined {
  const best = closest(name, Object.keys(DEFAULTS));
  // Past a third of the name's length the "nearest" is noise, not a typo.
  return distance(name, best) <= Math.ceil(name.length / 3) ? best : undefined;
}

function unknownSetting(near: string | undefined): string {
  return near ? `unknown setting; did you mean ${near}?` : "unknown setting (docs/operations.md lists them)";
}

/** YAML keys are the variable names, or their lower-case form without the IDMAP_ prefix (`rest_port`). */
function yamlToVars(doc: unknown, file: string): Record<string, string> {
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError(file, `expected a mapping of settings`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const upper = k.toUpperCase();
    const name = upper in DEFAULTS ? upper : upper.startsWith("IDMAP_") ? upper : `IDMAP_${upper}`;
    if (!(name in DEFAULTS)) {
      const near = nearestSetting(name);
      const yamlName = near?.startsWith("IDMAP_") ? near.slice("IDMAP_".length).toLowerCase() : near?.toLowerCase();
      throw new ConfigError(`${file}: ${k}`, unknownSetting(yamlName), yamlName);
    }
    out[name] = Array.isArray(v) ? v.join(",") : String(v);
  }
  return out;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, configFile?: string): Config {
  const fromFile = configFile ? yamlToVars(parseYaml(readText(configFile)), configFile) : {};
  const vars: Record<string, string> = { ...DEFAULTS, ...fromFile };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || !(k.startsWith("IDMAP_") || k === "CANONICAL_IDENTITY_MAP_ENABLED")) continue;
    if (!(k in DEFAULTS)) {
      if (NOT_SERVICE_SETTINGS.test(k)) continue;
      const near = nearestSetting(k);
      throw new ConfigError(k, unknownSetting(near), near);
    }
    vars[k] = v;
  }
  const get = (k: string) => (vars[k] ?? "").trim();

  const frontends = list(get("IDMAP_FRONTENDS")).map((f) => {
    if (f !== "rest" && f !== "grpc")
      throw new ConfigError("IDMAP_FRONTENDS", `unknown front-end ${JSON.stringify(f)} (expected rest, grpc)`);
    return f;
  });
  if (frontends.length === 0) throw new ConfigError("IDMAP_FRONTENDS", "at least one of rest, grpc is required");

  const authTokens = new Map<string, Role>();
  for (const entry of list(get("IDMAP_AUTH_TOKENS"))) {
    const i = entry.lastIndexOf(":");
    const token = entry.slice(0, i);
    const role = entry.slice(i + 1);
    if (i <= 0 || (role !== "reader" && role !== "writer"))
      throw new ConfigError("IDMAP_AUTH_TOKENS", "each entry must be token:reader or token:writer");
    // A short token can be guessed by anyone who can reach the port; the entry is not echoed (it is a secret).
    if (token.length < MIN_TOKEN_LENGTH)
      throw new ConfigError("IDMAP_AUTH_TOKENS", `every token must be at least ${MIN_TOKEN_LENGTH} characters`);
    authTokens.set(token, role);
  }

  const [certFile, keyFile, caFile] = [get("IDMAP_TLS_CERT"), get("IDMAP_TLS_KEY"), get("IDMAP_TLS_CA")];
  if ((certFile === "") !== (keyFile === ""))
    throw new ConfigError("IDMAP_TLS_KEY", "set both IDMAP_TLS_CERT and IDMAP_TLS_KEY (PEM files) or neither");
  if (caFile !== "" && certFile === "")
    throw new ConfigError("IDMAP_TLS_CA", "needs IDMAP_TLS_CERT and IDMAP_TLS_KEY (mTLS runs over TLS)");
  const mtlsRoles = parseSubjectRoles(get("IDMAP_MTLS_ROLES"));
  if (mtlsRoles.size > 0 && caFile === "")
    throw new ConfigError("IDMAP_MTLS_ROLES", "needs IDMAP_TLS_CA, the CA that signs the client certificates");
  const allowUnauthenticated =
    oneOf("IDMAP_ALLOW_UNAUTHENTICATED", get("IDMAP_ALLOW_UNAUTHENTICATED"), ["true", "false"] as const) === "true";

  const deniedMacs = new Set<string>();
  for (const m of list(get("IDMAP_DENIED_MACS"))) {
    const r = normalizeMac(m);
    if (!r.ok && r.reason === "invalid_mac")
      throw new ConfigError("IDMAP_DENIED_MACS", `${JSON.stringify(m)} is not a MAC`);
    if (r.ok) deniedMacs.add(r.mac);
  }

  let namespace: string;
  try {
    namespace = validateNamespace(get("IDMAP_NAMESPACE"));
  } catch (e) {
    throw new ConfigError("IDMAP_NAMESPACE", `${(e as Error).message}`);
  }
  const hydrateNamespaces = new Set<string>();
  for (const ns of list(get("IDMAP_HYDRATE_NAMESPACES"))) {
    try {
      hydrateNamespaces.add(validateNamespace(ns));
    } catch (e) {
      throw new ConfigError("IDMAP_HYDRATE_NAMESPACES", (e as Error).message);
    }
  }

  const db = oneOf("IDMAP_DB", get("IDMAP_DB"), DB_DIALECTS);
  const databaseUrl = get("IDMAP_DATABASE_URL");
  if (db === "postgres" && databaseUrl === "")
    throw new ConfigError("IDMAP_DATABASE_URL", "required when IDMAP_DB=postgres");
  const embeddedSync = oneOf("IDMAP_EMBEDDED_SYNC", get("IDMAP_EMBEDDED_SYNC"), ["full", "normal"] as const);

  return {
    host: get("IDMAP_HOST"),
    restPort: port("IDMAP_REST_PORT", get("IDMAP_REST_PORT")),
    grpcPort: port("IDMAP_GRPC_PORT", get("IDMAP_GRPC_PORT")),
    frontends,
    kvBackend: oneOf("IDMAP_KV_BACKEND", get("IDMAP_KV_BACKEND"), KV_BACKENDS),
    db,
    dataDir: get("IDMAP_DATA_DIR") || "./data",
    databaseUrl,
    natsUrl: get("IDMAP_NATS_URL"),
    kvBucket: get("IDMAP_KV_BUCKET"),
    kvReplicas: kvReplicas(get("IDMAP_KV_REPLICAS"), list(get("IDMAP_NATS_URL")).length),
    kvHistory: int("IDMAP_KV_HISTORY", get("IDMAP_KV_HISTORY"), 1, 64),
    kvMaxBytes: int("IDMAP_KV_MAX_BYTES", get("IDMAP_KV_MAX_BYTES"), -1, Number.MAX_SAFE_INTEGER),
    etcdEndpoints: list(get("IDMAP_ETCD_ENDPOINTS")),
    redisUrl: get("IDMAP_REDIS_URL"),
    namespace,
    mode: oneOf("CANONICAL_IDENTITY_MAP_ENABLED", get("CANONICAL_IDENTITY_MAP_ENABLED"), MODES),
    authTokens,
    tls: certFile !== "" ? { certFile, keyFile, caFile } : null,
    mtlsRoles,
    allowUnauthenticated,
    logLevel: oneOf("IDMAP_LOG_LEVEL", get("IDMAP_LOG_LEVEL"), [
      "trace",
      "debug",
      "info",
      "warn",
      "error",
      "fatal",
      "silent",
    ] as const),
    maxBatch: int("IDMAP_MAX_BATCH", get("IDMAP_MAX_BATCH"), 1, 1_000_000),
    bodyLimitBytes: int("IDMAP_BODY_LIMIT", get("IDMAP_BODY_LIMIT"), 1024, 1 << 30),
    requestTimeoutMs: duration("IDMAP_REQUEST_TIMEOUT", get("IDMAP_REQUEST_TIMEOUT")),
    maxLookupKeys: int("IDMAP_MAX_LOOKUP_KEYS", get("IDMAP_MAX_LOOKUP_KEYS"), 1, 10_000),
    maxBatchKeys: int("IDMAP_MAX_BATCH_KEYS", get("IDMAP_MAX_BATCH_KEYS"), 1, 1_000_000),
    maxClockSkewMs: duration("IDMAP_MAX_CLOCK_SKEW", get("IDMAP_MAX_CLOCK_SKEW")),
    hydrateNamespaces,
    freshnessWindowMs: duration("IDMAP_FRESHNESS_WINDOW", get("IDMAP_FRESHNESS_WINDOW")),
    weakKeyTtlMs: duration("IDMAP_WEAK_KEY_TTL", get("IDMAP_WEAK_KEY_TTL")),
    sharedMacRebinds: int("IDMAP_SHARED_MAC_REBINDS", get("IDMAP_SHARED_MAC_REBINDS"), 1, 1000),
    sharedMacWindowMs: duration("IDMAP_SHARED_MAC_WINDOW", get("IDMAP_SHARED_MAC_WINDOW")),
    sharedMacAmbiguousAfter: int("IDMAP_SHARED_MAC_AMBIGUOUS_AFTER", get("IDMAP_SHARED_MAC_AMBIGUOUS_AFTER"), 1, 1000),
    compactIntervalMs: duration("IDMAP_COMPACT_INTERVAL", get("IDMAP_COMPACT_INTERVAL")),
    auditRetentionMs: duration("IDMAP_AUDIT_RETENTION", get("IDMAP_AUDIT_RETENTION")),
    auditRecoveryAgeMs: duration("IDMAP_AUDIT_RECOVERY_AGE", get("IDMAP_AUDIT_RECOVERY_AGE")),
    addressAuthorities: new Set(list(get("IDMAP_ADDRESS_AUTHORITIES"))),
    deniedMacs,
    embeddedSync,
    // A JS Map holds at most 2^24 entries: past that, only the bounded cache can serve the map.
    cacheMaxBindings:
      get("IDMAP_CACHE_MAX_BINDINGS") === ""
        ? undefined
        : int("IDMAP_CACHE_MAX_BINDINGS", get("IDMAP_CACHE_MAX_BINDINGS"), 1, 16_000_000),
    raw: vars,
  };
}

/** JetStream keeps at most 5 replicas; a cluster defaults to 3 so that one node may fail. */
function kvReplicas(v: string, natsServers: number): number {
  if (v === "") return natsServers > 1 ? 3 : 1;
  return int("IDMAP_KV_REPLICAS", v, 1, 5);
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError("--config", `${file}: ${(e as Error).message}`);
  }
}

function list(s: string): string[] {
  return s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "");
}

function oneOf<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw new ConfigError(name, `unknown value ${JSON.stringify(v)} (expected one of ${allowed.join(", ")})`);
}

function port(name: string, v: string): number {
  return int(name, v, 0, 65535);
}

export function int(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || n < min || n > max)
    throw new ConfigError(name, `${JSON.stringify(v)} is not an integer in [${min}, ${max}]`);
  return n;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `10s`, `15m`, `24h`, `7d`, or plain milliseconds. */
export function duration(name: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v);
  if (!m) throw new ConfigError(name, `${JSON.stringify(v)} is not a duration (e.g. 500ms, 10s, 15m, 24h)`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? "ms"]!);
}
