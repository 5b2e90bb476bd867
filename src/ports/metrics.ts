import type { IdentityKind } from "../domain/identity-kind.js";
import type { RejectionReason } from "../domain/rejection.js";

export type PublishOutcome = "created" | "updated" | "unchanged" | "rejected" | "failed";
export type LookupVia = "cache" | "kv" | "db" | "miss" | "error";
export type KvOp = "get" | "get_many" | "create" | "update" | "delete" | "list";

/**
 * What the service counts. Labels are bounded: outcomes, reasons, kinds, backends; never device
 * ids, keys or addresses. Use cases call it at the edge; the domain never counts.
 */
export interface Metrics {
  publishOutcome(outcome: PublishOutcome, count?: number): void;
  publishBatch(size: number, seconds: number): void;
  conflict(reason: string): void;
  veto(): void;
  staleLink(): void;
  rejectedIdentifier(reason: RejectionReason): void;
  lookup(via: LookupVia, found: boolean, seconds: number): void;
  kvOperation(op: KvOp, backend: string, seconds: number, ok: boolean, keys?: number): void;
  /** Writes that never reached the KV: `cache` (answered locally) or `hash` (record unchanged). */
  writeAvoided(reason: "cache" | "hash", count?: number): void;
  bindingChange(reason: string, kind: IdentityKind): void;
  shadowDivergence(reason: string): void;
}

export const noopMetrics: Metrics = {
  publishOutcome() {},
  publishBatch() {},
  conflict() {},
  veto() {},
  staleLink() {},
  rejectedIdentifier() {},
  lookup() {},
  kvOperation() {},
  writeAvoided() {},
  bindingChange() {},
  shadowDivergence() {},
};
