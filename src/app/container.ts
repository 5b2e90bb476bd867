import "reflect-metadata";
import { Container } from "inversify";
import { DEFAULT_BACKOFF } from "../domain/backoff.js";
import { sharedIdentifierPolicy } from "../domain/shared-identifier.js";
import type { ResolutionPolicy } from "../domain/resolution.js";
import { PromMetrics } from "../adapters/metrics/prom-metrics.js";
import { systemClock, type Clock } from "../ports/clock.js";
import type {
  DeviceListPage,
  DeviceListRequest,
  HistoryRequest,
  IdentityMapApi,
  TlsMaterial,
} from "../ports/identity-service.js";
import type { DeviceStore, HistoryPage, IdentityKv, Metrics } from "../ports/index.js";
import { openDeviceStore, openKv } from "./adapters.js";
import { Authenticator, reportAuthFailures } from "./auth.js";
import { CensusRefresher } from "./bindings/binding-census.js";
import { BindingStore, startCachedStore } from "./bindings/binding-store.js";
import type { Config } from "./config.js";
import { appLogger, type Logger } from "./logger.js";
import { deviceHistory } from "./lookup/device-history.js";
import { listDevices } from "./lookup/device-listing.js";
import { LookupService } from "./lookup/lookup-service.js";
import { PublishService } from "./publish/publish-service.js";
import { QuarantineService } from "./shared-identifiers/quarantine-service.js";
import { OperatorService } from "./operator/operator-service.js";
import { startKvShadow, type KvShadow } from "./publish/shadow.js";
import { ChangeStreamMetrics } from "../adapters/metrics/change-metrics.js";
import { ChangeFeed } from "./changes/change-feed.js";
import { streamSettings } from "./changes/stream-settings.js";
import { loadTls } from "./tls.js";

/** Container tokens. Only the composition root knows them; nothing below src/app imports inversify. */
export const TOKENS = {
  Config: Symbol.for("Config"),
  Logger: Symbol.for("Logger"),
  Clock: Symbol.for("Clock"),
  Metrics: Symbol.for("Metrics"),
  Kv: Symbol.for("IdentityKv"),
  DeviceStore: Symbol.for("DeviceStore"),
  Policy: Symbol.for("ResolutionPolicy"),
  /** The binding store resolution runs on: the KV (flag on) or the relational table (off, shadow). */
  PrimaryStore: Symbol.for("PrimaryStore"),
  PublishService: Symbol.for("PublishService"),
  LookupService: Symbol.for("LookupService"),
} as const;

/** How long start-up waits for the binding cache's first load before serving from the store meanwhile. */
const CACHE_READY_WITHIN_MS = 1_000;

export interface AppOverrides {
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly kv?: IdentityKv;
  readonly devices?: DeviceStore;
}

/**
 * The running service's parts, built once by the container. The CLI and tests take all of it; the
 * front-ends take only the IdentityMapApi it implements.
 */
export interface App extends IdentityMapApi {
  readonly config: Config;
  readonly log: Logger;
  readonly clock: Clock;
  readonly metrics: PromMetrics;
  readonly kv: IdentityKv;
  readonly devices: DeviceStore;
  readonly policy: ResolutionPolicy;
  readonly store: BindingStore;
  readonly publish: PublishService;
  readonly lookup: LookupService;
  readonly quarantine: QuarantineService;
  readonly operator: OperatorService;
  readonly changes: ChangeFeed;
  /** The change stream's and webhooks' counters (issue 15). */
  readonly streamMetrics: ChangeStreamMetrics;
  readonly authenticator: Authenticator;
  readonly container: Container;
  history(req: HistoryRequest): Promise<HistoryPage>;
  listDevices(req: DeviceListRequest): Promise<DeviceListPage>;
  /** Readiness: both stores answer. */
  ready(): Promise<{ kv: boolean; db: boolean }>;
  loadTls(): TlsMaterial | null;
  close(): Promise<void>;
}

/**
 * The one composition root: config in, a wired service out. The flag decides where the map lives:
 * `on` resolves on the KV with the relational store as fallback; `off` and `shadow` resolve on the
 * relational binding table and write nothing to the KV.
 */
export async function createApp(config: Config, overrides: AppOverrides = {}): Promise<App> {
  const c = new Container({ defaultScope: "Singleton" });
  c.bind<Config>(TOKENS.Config).toConstantValue(config);
  c.bind<Logger>(TOKENS.Logger).toConstantValue(overrides.logger ?? appLogger(config));
  c.bind<Clock>(TOKENS.Clock).toConstantValue(overrides.clock ?? systemClock);
  c.bind<PromMetrics>(TOKENS.Metrics).toConstantValue(new PromMetrics());
  c.bind<ResolutionPolicy>(TOKENS.Policy).toConstantValue({
    freshnessWindowMs: config.freshnessWindowMs,
    weakKeyTtlMs: config.weakKeyTtlMs,
    addressAuthorities: config.addressAuthorities,
    sharedIdentifiers: sharedIdentifierPolicy(config),
  });
  c.bind<IdentityKv>(TOKENS.Kv).toResolvedValue(
    (cfg: Config, log: Logger) => overrides.kv ?? openKv(cfg, log),
    [TOKENS.Config, TOKENS.Logger],
  );
  c.bind<DeviceStore>(TOKENS.DeviceStore).toResolvedValue(
    async (cfg: Config, log: Logger) => overrides.devices ?? (await openDeviceStore(cfg, log)),
    [TOKENS.Config, TOKENS.Logger],
  );
  let census: CensusRefresher | undefined;
  c.bind<BindingStore>(TOKENS.PrimaryStore).toResolvedValue(
    async (cfg: Config, kv: IdentityKv, devices: DeviceStore, metrics: Metrics, log: Logger) => {
      const backing = cfg.mode === "on" ? kv : devices.bindings();
      return startCachedStore(
        backing,
        cfg.namespace,
        log,
        (cache) => {
          // The bindings gauges count the local cache (it mirrors the namespace) at scrape time.
          census = new CensusRefresher(cache, cfg.namespace, () => c.get<Clock>(TOKENS.Clock).nowMs());
          return new BindingStore(backing, cfg.namespace, cache, metrics);
        },
        // A big map loads in the background: until then, keys not loaded yet are read from the store.
        {
          readyWithinMs: CACHE_READY_WITHIN_MS,
          ...(cfg.cacheMaxBindings ? { maxBindings: cfg.cacheMaxBindings } : {}),
        },
      );
    },
    [TOKENS.Config, TOKENS.Kv, TOKENS.DeviceStore, TOKENS.Metrics, TOKENS.Logger],
  );
  let shadow: KvShadow | undefined;
  c.bind<PublishService>(TOKENS.PublishService).toResolvedValue(
    async (
      cfg: Config,
      store: BindingStore,
      devices: DeviceStore,
      clock: Clock,
      metrics: Metrics,
      log: Logger,
      policy: ResolutionPolicy,
      kv: IdentityKv,
    ) => {
      // Shadow mode: every decision is made again on the KV map, read-only, and differences counted.
      if (cfg.mode === "shadow") shadow = await startKvShadow(kv, cfg.namespace, policy, metrics, log);
      return new PublishService({
        store,
        devices,
        clock,
        metrics,
        log,
        policy,
        backoff: DEFAULT_BACKOFF,
        deniedMacs: cfg.deniedMacs,
        maxClockSkewMs: cfg.maxClockSkewMs,
        maxBatch: cfg.maxBatch,
        ...(shadow ? { shadow } : {}),
        // A bounded cache bounds what the recorder remembers too: a map larger than memory stays so.
        ...(cfg.cacheMaxBindings ? { recorderMaxRows: cfg.cacheMaxBindings } : {}),
      });
    },
    [
      TOKENS.Config,
      TOKENS.PrimaryStore,
      TOKENS.DeviceStore,
      TOKENS.Clock,
      TOKENS.Metrics,
      TOKENS.Logger,
      TOKENS.Policy,
      TOKENS.Kv,
    ],
  );
  c.bind<LookupService>(TOKENS.LookupService).toResolvedValue(
    (
      cfg: Config,
      store: BindingStore,
      devices: DeviceStore,
      clock: Clock,
      metrics: Metrics,
      log: Logger,
      policy: ResolutionPolicy,
    ) =>
      new LookupService({
        store,
        devices,
        clock,
        metrics,
        log,
        policy,
        hydrate: cfg.mode === "on",
        hydrateNamespaces: cfg.hydrateNamespaces,
        maxLookupKeys: cfg.maxLookupKeys,
        maxBatchKeys: cfg.maxBatchKeys,
        maxBatch: cfg.maxBatch,
        storeFor: (ns) => store.inNamespace(ns),
      }),
    [
      TOKENS.Config,
      TOKENS.PrimaryStore,
      TOKENS.DeviceStore,
      TOKENS.Clock,
      TOKENS.Metrics,
      TOKENS.Logger,
      TOKENS.Policy,
    ],
  );

  // The stores first: when one cannot be opened, the other is closed again, so a service that retries
  // its start while a backend is away (serve) leaks no connection per attempt.
  const opened = await Promise.allSettled([
    c.getAsync<IdentityKv>(TOKENS.Kv),
    c.getAsync<DeviceStore>(TOKENS.DeviceStore),
  ]);
  const [kvOpened, devicesOpened] = opened;
  if (kvOpened.status === "rejected" || devicesOpened.status === "rejected") {
    if (kvOpened.status === "fulfilled" && !overrides.kv) await kvOpened.value.close().catch(() => {});
    if (devicesOpened.status === "fulfilled" && !overrides.devices) await devicesOpened.value.close().catch(() => {});
    throw kvOpened.status === "rejected" ? kvOpened.reason : (devicesOpened as PromiseRejectedResult).reason;
  }
  const kv = kvOpened.value;
  const devices = devicesOpened.value;
  let store: BindingStore;
  let publish: PublishService;
  let lookup: LookupService;
  try {
    [store, publish, lookup] = await Promise.all([
      c.getAsync<BindingStore>(TOKENS.PrimaryStore),
      c.getAsync<PublishService>(TOKENS.PublishService),
      c.getAsync<LookupService>(TOKENS.LookupService),
    ]);
  } catch (e) {
    // The cache could not load (the KV went away meanwhile): nothing half-started stays open.
    census?.stop();
    await shadow?.stop().catch(() => {});
    if (!overrides.kv) await kv.close().catch(() => {});
    if (!overrides.devices) await devices.close().catch(() => {});
    throw e;
  }
  const log = c.get<Logger>(TOKENS.Logger);
  const metrics = c.get<PromMetrics>(TOKENS.Metrics);
  const clock = c.get<Clock>(TOKENS.Clock);
  if (census) {
    const refresher = census;
    metrics.observeBindings(() => refresher.current());
  }
  // The change stream follows the map resolution runs on: the KV (flag on) or the relational table.
  const stream = streamSettings(config);
  const streamMetrics = new ChangeStreamMetrics(metrics.registry);
  const changes = new ChangeFeed(config.mode === "on" ? kv : devices.bindings(), clock, log, {
    namespace: config.namespace,
    bufferSize: stream.bufferSize,
    heartbeatMs: stream.heartbeatMs,
    onSent: (transport, n) => streamMetrics.sent(transport, n),
  });
  streamMetrics.observe(() => changes.stats());
  return {
    config,
    log,
    clock,
    metrics,
    kv,
    devices,
    policy: c.get<ResolutionPolicy>(TOKENS.Policy),
    store,
    publish,
    lookup,
    quarantine: new QuarantineService({
      store,
      devices,
      clock,
      metrics,
      log,
      weakKeyTtlMs: config.weakKeyTtlMs,
    }),
    operator: new OperatorService({
      store,
      devices,
      clock,
      metrics,
      log,
      weakKeyTtlMs: config.weakKeyTtlMs,
      lookup,
      publish,
    }),
    changes,
    streamMetrics,
    // Refused calls are logged (without the token) and counted, on every front-end.
    authenticator: Authenticator.fromConfig(config, reportAuthFailures({ log, metrics })),
    container: c,
    history: (req) => deviceHistory(devices, req),
    listDevices: (req) => listDevices(devices, req),
    loadTls: () => loadTls(config),
    async ready() {
      const ok = (p: Promise<unknown>) =>
        p.then(
          () => true,
          () => false,
        );
      const [k, d] = await Promise.all([ok(withTimeout(kv.ping(), 2_000)), ok(withTimeout(devices.ping(), 2_000))]);
      return { kv: k, db: d };
    },
    async close() {
      census?.stop();
      await changes.stop();
      await store.stop();
      await shadow?.stop();
      await kv.close();
      await devices.close();
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error("timeout")), ms))),
  ]).finally(() => clearTimeout(t));
}
