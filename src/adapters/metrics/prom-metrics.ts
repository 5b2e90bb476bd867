import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { IdentityKind } from "../../domain/identity-kind.js";
import type { RejectionReason } from "../../domain/rejection.js";
import type { KvOp, LookupVia, Metrics, PublishOutcome } from "../../ports/metrics.js";

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The Metrics port on prom-client, in its own registry (tests build many apps in one process).
 * Names follow design.md §5; labels are bounded sets only.
 */
export class PromMetrics implements Metrics {
  readonly registry = new Registry();
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
  private readonly changes: Counter<"reason" | "kind">;
  private readonly shadow: Counter<"reason">;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.publishTotal = new Counter({ name: "identitymap_kv_publish_total", help: "Published device updates by outcome", labelNames: ["outcome"], registers });
    this.conflictTotal = new Counter({ name: "identitymap_conflict_total", help: "CAS conflicts, refused rebinds and retry exhaustion, by reason", labelNames: ["reason"], registers });
    this.lookupLatency = new Histogram({ name: "identitymap_lookup_latency_seconds", help: "Lookup latency by where the answer came from", labelNames: ["resolved_via", "found"], buckets: LATENCY_BUCKETS, registers });
    this.lookupTotal = new Counter({ name: "identitymap_lookup_total", help: "Lookups by result (hit, miss, error)", labelNames: ["result"], registers });
    this.publishLatency = new Histogram({ name: "identitymap_publish_latency_seconds", help: "Latency of one publish batch", buckets: LATENCY_BUCKETS, registers });
    this.batchSize = new Histogram({ name: "identitymap_publish_batch_size", help: "Updates per publish batch", buckets: [1, 10, 100, 500, 1000, 5000, 10000], registers });
    this.kvOps = new Counter({ name: "identitymap_kv_operations_total", help: "KV operations by operation, backend and result", labelNames: ["op", "backend", "result"], registers });
    this.kvLatency = new Histogram({ name: "identitymap_kv_operation_latency_seconds", help: "KV operation latency", labelNames: ["op", "backend"], buckets: LATENCY_BUCKETS, registers });
    this.kvKeys = new Counter({ name: "identitymap_kv_keys_total", help: "Keys read or written by KV operations (a batch read counts each key)", labelNames: ["op", "backend"], registers });
    this.avoided = new Counter({ name: "identitymap_writes_avoided_total", help: "Updates that cost no KV write: answered by the cache or unchanged by hash", labelNames: ["reason"], registers });
    this.rejected = new Counter({ name: "identitymap_rejected_identifiers_total", help: "Identifiers refused at the edge, by reason", labelNames: ["reason"], registers });
    this.vetoes = new Counter({ name: "identitymap_merge_vetoes_total", help: "Candidate devices refused because a stronger identity differs", registers });
    this.staleLinks = new Counter({ name: "identitymap_stale_links_total", help: "Address links refused because the binding was not fresh", registers });
    this.changes = new Counter({ name: "identitymap_binding_changes_total", help: "Binding changes by reason and kind", labelNames: ["reason", "kind"], registers });
    this.shadow = new Counter({ name: "identitymap_shadow_divergence_total", help: "Shadow-mode decisions that differ from the relational ones", labelNames: ["reason"], registers });
  }

  publishOutcome(outcome: PublishOutcome, count = 1): void {
    this.publishTotal.inc({ outcome }, count);
  }
  publishBatch(size: number, seconds: number): void {
    this.batchSize.observe(size);
    this.publishLatency.observe(seconds);
  }
  conflict(reason: string): void {
    this.conflictTotal.inc({ reason });
  }
  veto(): void {
    this.vetoes.inc();
  }
  staleLink(): void {
    this.staleLinks.inc();
  }
  rejectedIdentifier(reason: RejectionReason): void {
    this.rejected.inc({ reason });
  }
  lookup(via: LookupVia, found: boolean, seconds: number): void {
    this.lookupLatency.observe({ resolved_via: via, found: String(found) }, seconds);
    this.lookupTotal.inc({ result: via === "error" ? "error" : found ? "hit" : "miss" });
  }
  kvOperation(op: KvOp, backend: string, seconds: number, ok: boolean, keys = 1): void {
    this.kvOps.inc({ op, backend, result: ok ? "ok" : "error" });
    this.kvLatency.observe({ op, backend }, seconds);
    this.kvKeys.inc({ op, backend }, keys);
  }
  writeAvoided(reason: "cache" | "hash", count = 1): void {
    this.avoided.inc({ reason }, count);
  }
  bindingChange(reason: string, kind: IdentityKind): void {
    this.changes.inc({ reason, kind });
  }
  shadowDivergence(reason: string): void {
    this.shadow.inc({ reason });
  }
}
