import type { Revision } from "../domain/binding.js";
import type { DeviceUpdate } from "../domain/device-update.js";
import type { IdentityKind } from "../domain/identity-kind.js";
import type { IdentityKey } from "../domain/identity-key.js";
import type { CanonicalRecord, Pin } from "../domain/record.js";
import type { RejectedIdentifier } from "../domain/rejection.js";
import type { DecisionTrace, Tombstone } from "../domain/resolution.js";
import type { ChangeFeedUseCase } from "./changes.js";
import type { DeviceFilter, DeviceRow, HistoryPage, ListedDevice } from "./device-store.js";
import type { Logger } from "./logger.js";
import type { LookupVia } from "./metrics.js";

/*
 * The driving port: what the REST and gRPC front-ends (and the client's types) may know about the
 * service. The use cases in src/app implement it; the front-ends import only this, so they cannot
 * reach into the container, the binding store or the config (ADR 0009).
 */

export interface PublishResult {
  readonly device_id: string;
  readonly canonical_device_id: string | null;
  readonly matched_by: IdentityKind | null;
  readonly outcome: "created" | "updated" | "unchanged" | "rejected" | "failed";
  readonly tombstone?: Tombstone;
  readonly merged_device_ids?: readonly string[];
  readonly rejected_identifiers?: readonly RejectedIdentifier[];
  readonly error?: { readonly code: string; readonly message: string; readonly keys?: readonly string[] };
}

export interface ResolveResult {
  readonly device_id: string;
  readonly canonical_device_id: string | null;
  readonly canonical_partition: string | null;
  readonly canonical_metadata_hash: string | null;
  readonly canonical_revision: Revision | null;
  readonly matched_by: IdentityKind | null;
  readonly rejected_identifiers?: readonly RejectedIdentifier[];
  /** With `explain`: why the decision came out as it did. */
  readonly trace?: DecisionTrace;
}

export interface LookupRequest {
  readonly identityKeys: readonly { readonly kind: string; readonly value: string }[];
  readonly ipHint?: string;
  readonly namespace?: string;
  /**
   * The caller holds the writer role. Only then may a relational answer be written back to the map:
   * a lookup is a read, and a reader must not be able to create bindings (issue 12, defect 1).
   */
  readonly mayWrite?: boolean;
}

export interface LookupResult {
  readonly found: boolean;
  readonly record?: CanonicalRecord;
  readonly matchedKey?: IdentityKey;
  /** The KV revision of the matched binding; 0 when the answer came from the relational store. */
  readonly revision: Revision;
  /** True when a relational answer was written back to the KV. */
  readonly hydrated: boolean;
  readonly resolvedVia: LookupVia;
  /** A miss because a key is a quarantined (shared) identifier: the devices it could name. */
  readonly ambiguous?: { readonly key: IdentityKey; readonly candidates: readonly string[] };
}

export interface DeviceView {
  readonly deviceId: string;
  readonly record: CanonicalRecord;
  readonly revision: Revision;
  readonly keys: readonly IdentityKey[];
  readonly redirectedTo?: string;
}

export interface HistoryRequest {
  readonly deviceId: string;
  /** Entries per page: 1..500; absent means 50. */
  readonly limit?: number;
  /** The `next` cursor of the previous page; absent for the newest entries. */
  readonly before?: number;
}

export interface DeviceListRequest {
  readonly filter: DeviceFilter;
  /** The `nextCursor` of the previous page; absent for the first. */
  readonly cursor?: string;
  /** Devices per page: 1..1000; absent means 100. */
  readonly limit?: number;
}

export interface DeviceListPage {
  readonly devices: readonly ListedDevice[];
  /** Absent on the last page. */
  readonly nextCursor?: string;
}

export interface PublishUseCase {
  publish(updates: readonly DeviceUpdate[], actor: string): Promise<readonly PublishResult[]>;
  resolve(updates: readonly DeviceUpdate[], options?: { explain?: boolean }): Promise<readonly ResolveResult[]>;
}

/** A MAC quarantined as shared (ADR 0010): it links and merges nothing until released. */
export interface QuarantinedIdentifier {
  readonly key: IdentityKey;
  readonly quarantinedSinceMs: number;
  /** The devices that took it from each other. */
  readonly candidates: readonly string[];
}

export interface QuarantineUseCase {
  list(): Promise<readonly QuarantinedIdentifier[]>;
  /** NotFound when it is not quarantined; InvalidArgument naming `kind` or `value`. */
  release(kind: string, value: string, actor: string): Promise<void>;
}

/** What an operator's merge or split did (ADR 0016). */
export interface OperatorResult {
  /** The device that holds the moved keys now: the merge's target, or the device a split created. */
  readonly deviceId: string;
  /** The keys that moved, as the audit trail names them. */
  readonly moved: readonly IdentityKey[];
}

/** One key of a device as the console shows it: pinned or not. */
export interface DeviceKeyDetail {
  readonly key: IdentityKey;
  readonly pin?: Pin;
}

/** A device as an operator investigates it (the console's device page). */
export interface DeviceDetail {
  readonly view: DeviceView;
  readonly keys: readonly DeviceKeyDetail[];
  /** Retired ids that redirect to this device. */
  readonly redirectsIn: readonly string[];
  readonly provisional: boolean;
  /** The device's latest sighting as the relational store has it, when it has one. */
  readonly latest?: DeviceRow;
  /** How the rules decide that sighting now (resolve with explain, read-only). */
  readonly explanation?: ResolveResult;
}

/** Manual decisions (ADR 0016): merge, split, pins; each audited with the operator's actor name. */
export interface OperatorUseCase {
  /** `deviceId`'s keys move to `into` and its id redirects there; InvalidArgument naming `into` or `device_id`. */
  merge(deviceId: string, into: string, actor: string): Promise<OperatorResult>;
  /** The keys become a new device; InvalidArgument naming `keys[i]`. */
  split(deviceId: string, keys: readonly { kind: string; value: string }[], actor: string): Promise<OperatorResult>;
  /** Pins a key bound to the device; idempotent. */
  pin(deviceId: string, key: { kind: string; value: string }, actor: string): Promise<void>;
  /** Lifts a pin; NotFound when the key is not pinned to the device. */
  unpin(deviceId: string, key: { kind: string; value: string }, actor: string): Promise<void>;
  /** Sightings refused by a pin, newest first: the conflicts an operator settles. */
  pinConflicts(limit: number): Promise<HistoryPage["entries"]>;
  detail(deviceId: string): Promise<DeviceDetail>;
}

/** Who held an identifier at a time (ADR 0016), from the audit trail. */
export interface AsOfResult {
  readonly found: boolean;
  readonly atMs: number;
  /** The key that answered: the first of the given keys someone held at that time. */
  readonly matchedKey?: IdentityKey;
  readonly deviceId?: string;
  /** When that device got the key, and when it lost it (absent: still held, as far as the trail says). */
  readonly sinceMs?: number;
  readonly untilMs?: number;
  /** The audit entry that bound it: its rule and who made the change. */
  readonly reason?: string;
  readonly actor?: string;
}

export interface LookupUseCase {
  lookup(req: LookupRequest): Promise<LookupResult>;
  lookupMany(reqs: readonly LookupRequest[]): Promise<readonly LookupResult[]>;
  device(deviceId: string): Promise<DeviceView>;
  /** Who held the first of these identifiers someone held at `atMs`; InvalidArgument naming `identity_keys[i]`. */
  asOf(keys: readonly { kind: string; value: string }[], atMs: number): Promise<AsOfResult>;
}

export type Role = "reader" | "writer";

/** Who is calling: `actor` names the caller in the audit trail and logs and is never a secret. */
export interface Principal {
  readonly actor: string;
  readonly role: Role;
}

/** What a front-end saw on the connection and the request. */
export interface Credentials {
  /** The `Authorization` header (REST) or `authorization` metadata (gRPC), as sent. */
  readonly authorization?: string | undefined;
  /** The subject of a client certificate the TLS layer verified against IDMAP_TLS_CA. */
  readonly peerSubject?: Readonly<Record<string, string | readonly string[] | undefined>> | undefined;
  /** Where the request came in and from whom, for the log of a refusal. */
  readonly transport?: "rest" | "grpc";
  readonly peer?: string | undefined;
}

/** Credentials to principal; throws Unauthenticated or PermissionDenied. */
export interface CallAuthenticator {
  authorize(creds: Credentials, need: Role): Principal;
}

/** PEM bytes for the front-ends: the server's certificate chain and key, and the client CA (mTLS). */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Set: gRPC requires client certificates signed by this CA (IDMAP_TLS_CA). */
  readonly ca?: Buffer;
}

/** The settings a front-end needs; the app's Config has these and more. */
export interface FrontEndSettings {
  readonly host: string;
  readonly grpcPort: number;
  readonly requestTimeoutMs: number;
  readonly bodyLimitBytes: number;
  readonly mode: string;
  /** The shared-MAC rules a follower needs to tell when a contested MAC stops being ambiguous. */
  readonly sharedMacRebinds: number;
  readonly sharedMacWindowMs: number;
  readonly sharedMacAmbiguousAfter: number;
}

/** Everything a front-end calls: the use cases, readiness, the metrics text, auth and TLS. */
export interface IdentityMapApi {
  readonly config: FrontEndSettings;
  readonly log: Logger;
  readonly publish: PublishUseCase;
  readonly lookup: LookupUseCase;
  readonly quarantine: QuarantineUseCase;
  readonly operator: OperatorUseCase;
  /** The change stream: snapshot and follow (issue 15). */
  readonly changes: ChangeFeedUseCase;
  readonly authenticator: CallAuthenticator;
  history(req: HistoryRequest): Promise<HistoryPage>;
  /** Canonical devices, filtered, one page at a time. */
  listDevices(req: DeviceListRequest): Promise<DeviceListPage>;
  /** Readiness: both stores answer. */
  ready(): Promise<{ kv: boolean; db: boolean }>;
  /** The Prometheus exposition. */
  readonly metrics: { readonly registry: { readonly contentType: string; metrics(): Promise<string> } };
  /** The certificate files named in the config, read now; null when TLS is off. */
  loadTls(): TlsMaterial | null;
}
