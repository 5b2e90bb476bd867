import type { IdentityKind } from "../domain/identity-kind.js";
import type { RejectionReason } from "../domain/rejection.js";
import type { ConflictReason as RefusedRebind } from "../domain/resolution.js";

export type PublishOutcome = "created" | "updated" | "unchanged" | "rejected" | "failed";
/** Where a lookup's answer came from; `invalid` is a request refused before any store was asked. */
export type LookupVia = "cache" | "kv" | "db" | "miss" | "invalid" | "error";
export type KvOp = "get" | "get_many" | "create" | "update" | "delete" | "list";
/** A CAS conflict is an answer, not a failure; `unknown` is a write whose reply was lost. */
export type KvResult = "ok" | "conflict" | "unknown" | "error";
/** Refused rebinds (the domain's), a CAS conflict met while writing, and a retry budget used up. */
export type ConflictReason = RefusedRebind | "revision_mismatch" | "retry_exhausted";

/**
 * What the service counts. Labels are bounded: outcomes, reasons, kinds, backends; never device
 * ids, keys or addresses. Use cases call it at the edge; the domain never counts.
 */
export interface Metrics {
  publishOutcome(outcome: PublishOutcome, count?: number): void;
  publishBatch(size: number, seconds: number): void;
  conflict(reason: ConflictReason): void;
  veto(): void;
  staleLink(): void;
  /** What became of a provisional device at an asserting update's address (ADR 0010). */
  provisional(action: "take_over" | "absorbed" | "absorption_refused"): void;
  rejectedIdentifier(reason: RejectionReason): void;
  lookup(via: LookupVia, found: boolean, seconds: number): void;
  kvOperation(op: KvOp, backend: string, seconds: number, result: KvResult, keys?: number): void;
  /** Writes that never reached the KV: `cache` (answered locally) or `hash` (record unchanged). */
  writeAvoided(reason: "cache" | "hash", count?: number): void;
  bindingChange(reason: string, kind: IdentityKind): void;
  /** Compaction found a binding past its expiry (`removed` false: someone refreshed it meanwhile). */
  bindingExpired(kind: IdentityKind, removed: boolean): void;
  shadowDivergence(reason: string): void;
  /** KV round trips one published update cost (reads that missed the cache, and writes), by its outcome. */
  publishKvOperations(outcome: PublishOutcome, reads: number, writes: number): void;
}

export const noopMetrics: Metrics = {
  publishOutcome() {},
  publishBatch() {},
  conflict() {},
  veto() {},
  staleLink() {},
  provisional() {},
  rejectedIdentifier() {},
  lookup() {},
  kvOperation() {},
  writeAvoided() {},
  bindingChange() {},
  bindingExpired() {},
  shadowDivergence() {},
  publishKvOperations() {},
};
