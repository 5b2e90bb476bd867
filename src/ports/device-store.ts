import type { BindingChange, ChangeReason, Revision } from "../domain/binding.js";
import type { IdentityKey } from "../domain/identity-key.js";
import type { IdentityKv } from "./identity-kv.js";

/** A device as the relational store knows it: one row per reported device id, with its latest sighting. */
export interface DeviceRow {
  readonly deviceId: string;
  /** The id this row resolves to; equal to deviceId for a canonical device. */
  readonly canonicalDeviceId: string;
  /** Set when the row was merged into another device (a tombstone). */
  readonly mergedInto: string | null;
  readonly partition: string;
  readonly ip: string;
  readonly macs: readonly string[];
  readonly armisId: string;
  readonly netboxIds: readonly string[];
  readonly hostname: string;
  readonly source: string;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** The device only ever carried addresses (sweeps, pings): an asserting update there takes it over. */
  readonly provisional?: boolean;
}

/** A device row seen again saying what it said at its last write: only its sighting moves on. */
export interface DeviceTouch {
  readonly deviceId: string;
  readonly lastSeenMs: number;
  readonly source: string;
}

/** Filters of the device listing; absent means any. */
export interface DeviceFilter {
  readonly partition?: string;
  readonly source?: string;
  readonly hostname?: string;
  /** Last seen at or after this time. */
  readonly updatedSinceMs?: number;
  /**
   * Provisional: the device carries no strong identifier (Armis, NetBox, MAC) and its id is its
   * address (`<partition>:<ip>` or the bare ip), so an asserting sighting may take it over.
   */
  readonly provisional?: boolean;
}

export interface ListedDevice extends DeviceRow {
  readonly provisional: boolean;
  /** Every identity key of the device, its device-id first, then strongest first. */
  readonly keys: readonly IdentityKey[];
}

/** One binding change (who, key, from, to, revision, reason). */
export interface AuditEntry {
  readonly atMs: number;
  readonly actor: string;
  readonly key: IdentityKey;
  readonly fromDeviceId: string | null;
  readonly toDeviceId: string | null;
  readonly revision: Revision | null;
  readonly reason: ChangeReason;
}

/** One key's binding around a time, from the audit trail. */
export interface KeyAsOf {
  readonly before: (AuditEntry & { readonly id: number }) | null;
  readonly after: (AuditEntry & { readonly id: number }) | null;
}

/**
 * The binding changes a publish attempt is about to make, journaled before its first KV write. Settled
 * (deleted) in the same transaction as their audit rows; one still here after its publish ended means the
 * process died, or the database failed, between the KV writes and the audit: recovery audits from it
 * whatever the map shows happened.
 */
export interface AuditIntent {
  readonly operationId: string;
  readonly atMs: number;
  readonly actor: string;
  readonly changes: readonly BindingChange[];
}

export interface HistoryPage {
  readonly entries: readonly (AuditEntry & { readonly id: number })[];
  /** Pass as `before` for the next (older) page; absent on the last page. */
  readonly next?: number;
}

/**
 * The relational port: device rows, the audit trail, queries by identity (DB fallback, backfill), and a
 * binding table with the same CAS contract as the KV (the map's home while the flag is off).
 */
export interface DeviceStore {
  readonly dialect: "sqlite" | "postgres";
  migrate(): Promise<void>;
  /** The relational binding table, behind the same port as the KV. */
  bindings(): IdentityKv;
  /** Inserts or replaces rows by device id, with the identities they carry. */
  upsertDevices(rows: readonly DeviceRow[]): Promise<void>;
  /**
   * Moves the last sighting (and reporting source) of existing rows on, and with it the last sighting of
   * the identities each row carries now (those its last write gave it), not of ones it carried before.
   * The cheap form of an upsert of a row whose content did not change (issue 13); a missing row is left alone.
   */
  touchDevices(touches: readonly DeviceTouch[]): Promise<void>;
  getDevice(deviceId: string): Promise<DeviceRow | null>;
  /** The newest row not merged away that carries this identity. */
  findByIdentity(key: IdentityKey): Promise<DeviceRow | null>;
  /** Rows ordered by device id, after `afterDeviceId`; for backfill and exports. */
  listDevices(options: { afterDeviceId?: string; limit: number; partition?: string }): Promise<DeviceRow[]>;
  /**
   * Canonical devices (rows not merged away) matching every given filter, ordered by device id after
   * `afterDeviceId`, each with the identity keys the store holds for it: the listing and the export.
   */
  listCanonicalDevices(filter: DeviceFilter, page: { afterDeviceId?: string; limit: number }): Promise<ListedDevice[]>;
  /** Appends audit rows and, in the same transaction, settles the named intents. */
  appendAudit(entries: readonly AuditEntry[], settles?: readonly string[]): Promise<void>;
  /** Journals what publish attempts are about to change (before their KV writes). */
  journalIntents(intents: readonly AuditIntent[]): Promise<void>;
  /** Intents journaled at or before `atOrBeforeMs` and never settled, oldest first. */
  unsettledIntents(atOrBeforeMs: number, limit: number): Promise<AuditIntent[]>;
  /** Binding changes that involve the device, newest first. */
  history(deviceId: string, options: { limit: number; before?: number }): Promise<HistoryPage>;
  /**
   * The binding of `key` as of `atMs`, from the audit trail: the last change at or before it (whose
   * `toDeviceId` held the key from then, null when nobody did) and the first change after it (when
   * that holding ended); null for either when there is none (ADR 0016).
   */
  keyAsOf(key: IdentityKey, atMs: number): Promise<KeyAsOf>;
  /** The pin conflicts an operator settles (audit reason `pin_conflict`), newest first. */
  pinConflicts(options: { limit: number }): Promise<HistoryPage>;
  /**
   * Deletes audit entries older than `beforeMs`, except the latest entry of each key (it still says who
   * holds the key since). Returns how many were deleted. The retention of as-of lookups and history.
   */
  pruneAudit(beforeMs: number): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * Keeps tombstones decided outside a publish (backfill) and marks each retired id's row merged into
   * its survivor (rows already merged into a retired id follow it). Idempotent.
   */
  recordTombstones(entries: readonly TombstoneEntry[]): Promise<void>;
  /** Kept tombstones ordered by retired id, after `afterDeviceId`. */
  listTombstones(options: { afterDeviceId?: string; limit: number }): Promise<TombstoneEntry[]>;
  /** The saved state of a long-running job (the backfill checkpoint), or null. */
  getJobState(name: string): Promise<string | null>;
  /** Saves a job's state; null clears it. */
  putJobState(name: string, state: string | null, atMs: number): Promise<void>;
}

/** A retired device id and the device it was merged into, with the identity key that tied them. */
export interface TombstoneEntry {
  readonly deviceId: string;
  readonly mergedInto: string;
  readonly key: IdentityKey | null;
  readonly atMs: number;
  readonly actor: string;
}
