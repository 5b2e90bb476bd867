import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { IDENTITY_KINDS, type IdentityKind } from "../../domain/identity-kind.js";
import { REJECTION_REASONS, type RejectionReason } from "../../domain/rejection.js";
import type { ConflictReason, KvOp, KvResult, LookupVia, Metrics, PublishOutcome } from "../../ports/metrics.js";

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** A batch of 10 000 updates on a remote KV takes seconds, not milliseconds. */
const PUBLISH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const PUBLISH_OUTCOMES: readonly PublishOutcome[] = ["created", "updated", "unchanged", "rejected", "failed"];
const CONFLICT_REASONS: readonly ConflictReason[] = [
  "weaker_assertion",
  "out_of_order",
  "pinned",
  "revision_mismatch",
  "retry_exhausted",
];
/**
 * `hit`: the map answered (local cache or KV); `fallback`: only the relational store knew the
 * device (the map is missing it); `miss`: nobody knows it; `invalid`: refused before any store was
 * asked; `error`: a store failed. Hit rate = hit / (hit + fallback + miss).
 */
const LOOKUP_RESULT: Readonly<Record<LookupVia, string>> = {
  cache: "hit",
  kv: "hit",
  db: "fallback",
  miss: "miss",
  invalid: "invalid",
  error: "error",
};

/** What the local binding cache holds, counted by the composition root (see binding-census.ts). */
export interface BindingCensus {
  /** False while the cache is loading or has lost its watch: the counts are then incomplete. */
  readonly synced: boolean;
  readonly live: Readonly<Record<IdentityKind, number>>;
  /** Past their expiry, waiting for compaction. */
  readonly expired: Readonly<Record<IdentityKind, number>>;
  /** Live device-id bindings that are their own canonical id (redirects of merged ids excluded). */
  readonly devices: number;
  /** Live MAC bindings quarantined as shared. */
  readonly quarantined: number;
}

/**
 * Increments of a counter kept as plain numbers by label values, handed to prom-client when the counter
 * is collected (a scrape, or anything reading the registry): prom-client hashes and validates the label
 * set on every `inc`, and the publish path increments several counters per KV call and per update (a few
 * per cent of a publish's CPU in the profiles, issue 13). The exposition is the same.
 */
class Tally {
  private readonly root = new Map<string, Map<string, Map<string, number>>>();
  constructor(private readonly names: readonly [string, ...string[]]) {}

  /** Label values in the order of `names` (unused ones ""). */
  add(n: number, a: string, b = "", c = ""): void {
    let m1 = this.root.get(a);
    if (!m1) this.root.set(a, (m1 = new Map()));
    let m2 = m1.get(b);
    if (!m2) m1.set(b, (m2 = new Map()));
    m2.set(c, (m2.get(c) ?? 0) + n);
  }

  flush(counter: Counter<string>): void {
    const [x, y, z] = this.names;
    for (const [a, m1] of this.root)
      for (const [b, m2] of m1)
        for (const [c, n] of m2) {
          if (n === 0) continue;
          const labels: Record<string, string> = { [x]: a };
          if (y) labels[y] = b;
          if (z) labels[z] = c;
          counter.inc(labels, n);
          m2.set(c, 0);
        }
  }
}

/**
 * The Metrics port on prom-client, in its own registry (tests build many apps in one process).
 * Names as docs/operations.md lists them; labels are bounded sets only.
 */
export class PromMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly tallies = {
    publish: new Tally(["outcome"]),
    kvOps: new Tally(["op", "backend", "result"]),
    kvKeys: new Tally(["op", "backend"]),
    avoided: new Tally(["reason"]),
    changes: new Tally(["reason", "kind"]),
    updateKvOps: new Tally(["outcome", "op"]),
  };
  private readonly publishTotal: Counter<"outcome">;
  private readonly conflictTotal: Counter<"reason">;
  private readonly lookupLatency: Histogram<"resolved_via" | "found">;
  private readonly lookupTotal: Counter<"result">;
  private readonly publishLatency: Histogram;
  private readonly batchSize: Histogram;
  private readonly kvOps: Counter<"op" | "backend" | "result">;
  private readonly kvLatency: Histogram<"op" | "backend">;
  private readonly kvKeys: Counter<"op" | "backend">;
  private readonly avoided: Counter<"reason">;
  private readonly rejected: Counter<"reason">;
  private readonly vetoes: Counter;
  private readonly staleLinks: Counter;
  private readonly provisionalTotal: Counter;
  private readonly changes: Counter<"reason" | "kind">;
  private readonly shadow: Counter<"reason">;
  private readonly expiredTotal: Counter<"kind">;
  private readonly compactedTotal: Counter<"kind">;
  private censusSource: (() => BindingCensus) | undefined;
  private lastCensus: { at: number; value: BindingCensus } | undefined;
  private readonly updateKvOps: Counter<"outcome" | "op">;
  private readonly authFailures: Counter<"transport" | "code">;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.publishTotal = new Counter({
      name: "identitymap_kv_publish_total",
      help: "Published device updates by outcome",
      labelNames: ["outcome"],
      registers,
      collect: flushing(this.tallies.publish),
    });
    this.conflictTotal = new Counter({
      name: "identitymap_conflict_total",
      help: "CAS conflicts, refused rebinds and retry exhaustion, by reason",
      labelNames: ["reason"],
      registers,
    });
    this.lookupLatency = new Histogram({
      name: "identitymap_lookup_latency_seconds",
      help: "Lookup latency by where the answer came from",
      labelNames: ["resolved_via", "found"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.lookupTotal = new Counter({
      name: "identitymap_lookup_total",
      help: "Lookups by result: hit (the map answered), fallback (only the relational store did), miss, invalid, error",
      labelNames: ["result"],
      registers,
    });
    this.publishLatency = new Histogram({
      name: "identitymap_publish_latency_seconds",
      help: "Latency of one publish batch",
      buckets: PUBLISH_BUCKETS,
      registers,
    });
    this.batchSize = new Histogram({
      name: "identitymap_publish_batch_size",
      help: "Updates per publish batch",
      buckets: [1, 10, 100, 500, 1000, 5000, 10000],
      registers,
    });
    this.kvOps = new Counter({
      name: "identitymap_kv_operations_total",
      help: "KV operations by operation, backend and result (ok, conflict: a CAS answer; unknown: reply lost; error)",
      labelNames: ["op", "backend", "result"],
      registers,
      collect: flushing(this.tallies.kvOps),
    });
    this.kvLatency = new Histogram({
      name: "identitymap_kv_operation_latency_seconds",
      help: "KV operation latency",
      labelNames: ["op", "backend"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.kvKeys = new Counter({
      name: "identitymap_kv_keys_total",
      help: "Keys read or written by KV operations (a batch read counts each key)",
      labelNames: ["op", "backend"],
      registers,
      collect: flushing(this.tallies.kvKeys),
    });
    this.avoided = new Counter({
      name: "identitymap_writes_avoided_total",
      help: "Updates that cost no KV write: answered by the cache or unchanged by hash",
      labelNames: ["reason"],
      registers,
      collect: flushing(this.tallies.avoided),
    });
    this.rejected = new Counter({
      name: "identitymap_rejected_identifiers_total",
      help: "Identifiers refused at the edge, by reason",
      labelNames: ["reason"],
      registers,
    });
    this.authFailures = new Counter({
      name: "identitymap_auth_failures_total",
      help: "Requests refused for missing, unknown or insufficient credentials, by front-end and error code",
      labelNames: ["transport", "code"],
      registers,
    });
    this.vetoes = new Counter({
      name: "identitymap_merge_vetoes_total",
      help: "Candidate devices refused because a stronger identity differs",
      registers,
    });
    this.provisionalTotal = new Counter({
      name: "identitymap_provisional_devices_total",
      help:
        "Provisional devices at an asserting update's address: taken over, absorbed, " +
        "or absorption refused (two places, veto)",
      labelNames: ["action"],
      registers,
    });
    this.staleLinks = new Counter({
      name: "identitymap_stale_links_total",
      help: "Address links refused because the binding was not fresh",
      registers,
    });
    this.changes = new Counter({
      name: "identitymap_binding_changes_total",
      help: "Binding changes by reason and kind",
      labelNames: ["reason", "kind"],
      registers,
      collect: flushing(this.tallies.changes),
    });
    this.updateKvOps = new Counter({
      name: "identitymap_publish_kv_operations_total",
      help: "KV round trips spent on published updates (reads that missed the cache, writes), by the update's outcome",
      labelNames: ["outcome", "op"],
      registers,
      collect: flushing(this.tallies.updateKvOps),
    });
    this.shadow = new Counter({
      name: "identitymap_shadow_divergence_total",
      help: "Shadow-mode decisions that differ from the relational ones",
      labelNames: ["reason"],
      registers,
    });
    this.expiredTotal = new Counter({
      name: "identitymap_bindings_expired_total",
      help: "Bindings compaction found past their expiry, by kind",
      labelNames: ["kind"],
      registers,
    });
    this.compactedTotal = new Counter({
      name: "identitymap_bindings_compacted_total",
      help: "Expired bindings compaction removed, by kind",
      labelNames: ["kind"],
      registers,
    });

    // Gauges read the local binding cache at scrape time: one census per scrape, never a KV call.
    const census = this.census.bind(this);
    new Gauge({
      name: "identitymap_bindings",
      help:
        "Bindings held in the namespace (from the local cache), by kind and state (live, expired awaiting " +
        "compaction)",
      labelNames: ["kind", "state"],
      registers,
      collect() {
        const c = census(true);
        if (!c) return;
        for (const kind of IDENTITY_KINDS) {
          this.set({ kind, state: "live" }, c.live[kind]);
          this.set({ kind, state: "expired" }, c.expired[kind]);
        }
      },
    });
    new Gauge({
      name: "identitymap_devices",
      help: "Canonical devices in the map: live device-id bindings that are not redirects",
      registers,
      collect() {
        const c = census(false);
        if (c) this.set(c.devices);
      },
    });
    new Gauge({
      name: "identitymap_quarantined_identifiers",
      help: "MACs quarantined as shared (docks, dongles, cloned VMs): they link and merge nothing until released",
      registers,
      collect() {
        const c = census(false);
        if (c) this.set(c.quarantined);
      },
    });
    new Gauge({
      name: "identitymap_binding_cache_synced",
      help: "1 while the local binding cache mirrors the namespace (watch running), 0 while it loads or resyncs",
      registers,
      collect() {
        const c = census(false);
        this.set(c?.synced ? 1 : 0);
      },
    });

    // Known label values start at zero, so rate() and the alert rules see a series from the first scrape.
    for (const outcome of PUBLISH_OUTCOMES) this.publishTotal.inc({ outcome }, 0);
    for (const reason of CONFLICT_REASONS) this.conflictTotal.inc({ reason }, 0);
    for (const result of new Set(Object.values(LOOKUP_RESULT))) this.lookupTotal.inc({ result }, 0);
    for (const reason of ["cache", "hash"]) this.avoided.inc({ reason }, 0);
    for (const reason of REJECTION_REASONS) this.rejected.inc({ reason }, 0);
    this.vetoes.inc(0);
    this.staleLinks.inc(0);
    for (const transport of ["rest", "grpc"])
      for (const code of ["unauthenticated", "permission_denied"]) this.authFailures.inc({ transport, code }, 0);
    for (const action of ["take_over", "absorbed", "absorption_refused"]) this.provisionalTotal.inc({ action }, 0);
  }

  /** A request refused by authentication or authorization (never counted by token: tokens are secrets). */
  authFailure(transport: "rest" | "grpc", code: "unauthenticated" | "permission_denied"): void {
    this.authFailures.inc({ transport, code });
  }

  /** Where the bindings gauges get their counts; the composition root wires the local cache in. */
  observeBindings(source: () => BindingCensus): void {
    this.censusSource = source;
  }

  /** The first gauge of a scrape counts; the others reuse its count (same scrape, same numbers). */
  private census(fresh: boolean): BindingCensus | undefined {
    if (!this.censusSource) return undefined;
    const now = performance.now();
    if (fresh || !this.lastCensus || now - this.lastCensus.at > 1_000)
      this.lastCensus = { at: now, value: this.censusSource() };
    return this.lastCensus.value;
  }

  publishOutcome(outcome: PublishOutcome, count = 1): void {
    if (counts(count)) this.tallies.publish.add(count, outcome);
    else this.publishTotal.inc({ outcome }, count);
  }
  publishBatch(size: number, seconds: number): void {
    this.batchSize.observe(size);
    this.publishLatency.observe(seconds);
  }
  conflict(reason: ConflictReason): void {
    this.conflictTotal.inc({ reason });
  }
  veto(): void {
    this.vetoes.inc();
  }
  staleLink(): void {
    this.staleLinks.inc();
  }
  provisional(action: "take_over" | "absorbed" | "absorption_refused"): void {
    this.provisionalTotal.inc({ action });
  }
  rejectedIdentifier(reason: RejectionReason): void {
    this.rejected.inc({ reason });
  }
  lookup(via: LookupVia, found: boolean, seconds: number): void {
    this.lookupLatency.observe({ resolved_via: via, found: String(found) }, seconds);
    this.lookupTotal.inc({ result: LOOKUP_RESULT[via] });
  }
  kvOperation(op: KvOp, backend: string, seconds: number, result: KvResult, keys = 1): void {
    this.tallies.kvOps.add(1, op, backend, result);
    this.kvLatency.observe({ op, backend }, seconds);
    if (counts(keys)) this.tallies.kvKeys.add(keys, op, backend);
    else this.kvKeys.inc({ op, backend }, keys);
  }
  writeAvoided(reason: "cache" | "hash", count = 1): void {
    if (counts(count)) this.tallies.avoided.add(count, reason);
    else this.avoided.inc({ reason }, count);
  }
  bindingChange(reason: string, kind: IdentityKind): void {
    this.tallies.changes.add(1, reason, kind);
  }
  publishKvOperations(outcome: PublishOutcome, reads: number, writes: number): void {
    if (counts(reads)) this.tallies.updateKvOps.add(reads, outcome, "read");
    else this.updateKvOps.inc({ outcome, op: "read" }, reads);
    if (counts(writes)) this.tallies.updateKvOps.add(writes, outcome, "write");
    else this.updateKvOps.inc({ outcome, op: "write" }, writes);
  }
  bindingExpired(kind: IdentityKind, removed: boolean): void {
    this.expiredTotal.inc({ kind });
    if (removed) this.compactedTotal.inc({ kind });
  }
  shadowDivergence(reason: string): void {
    this.shadow.inc({ reason });
  }
}

/** A counter's `collect`: its pending tally first. */
function flushing(tally: Tally) {
  return function (this: Counter<string>): void {
    tally.flush(this);
  };
}

/** An increment a tally may hold; anything else goes to prom-client at once (which refuses it as it did). */
const counts = (n: number): boolean => Number.isFinite(n) && n >= 0;
