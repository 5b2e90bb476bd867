import type { IdentityKey } from "./identity-key.js";

/**
 * One error type per failure, each with a literal `code`. Front-ends map codes to HTTP and gRPC
 * statuses through a single table (src/adapters/error-status.ts); nothing maps errors in a handler.
 */
export abstract class IdentityMapError extends Error {
  abstract readonly code: ErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A conditional write found another revision than it expected. Retried by the publish protocol. */
export class RevisionConflict extends IdentityMapError {
  readonly code = "revision_conflict" as const;
  constructor(
    /** The KV path. */
    readonly key: string,
    options?: { cause?: unknown },
    /** The identity key, when the binding store knows it (always, for conflicts a publish meets). */
    readonly identityKey?: IdentityKey,
  ) {
    super(`revision conflict on ${key}`, options);
  }
}

/** Why a clustered store cannot serve: `no_quorum` when fewer than a majority of its nodes answer. */
export type KvOutageReason = "no_quorum";

/** The KV store cannot be reached or did not answer in time. */
export class KvUnavailable extends IdentityMapError {
  readonly code = "kv_unavailable" as const;
  readonly reason: KvOutageReason | undefined;
  constructor(message: string, options?: { cause?: unknown; reason?: KvOutageReason }) {
    super(message, options);
    this.reason = options?.reason;
  }
}

/** A write was sent but its reply was lost: it may or may not have been applied. */
export class WriteOutcomeUnknown extends IdentityMapError {
  readonly code = "write_outcome_unknown" as const;
  readonly reason: KvOutageReason | undefined;
  constructor(message: string, options?: { cause?: unknown; reason?: KvOutageReason }) {
    super(message, options);
    this.reason = options?.reason;
  }
}

/** The relational store cannot be reached or did not answer in time. */
export class DbUnavailable extends IdentityMapError {
  readonly code = "db_unavailable" as const;
}

/** A request field is missing, has the wrong type, or holds a value that cannot be used. */
export class InvalidArgument extends IdentityMapError {
  readonly code = "invalid_argument" as const;
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

export class BatchTooLarge extends IdentityMapError {
  readonly code = "batch_too_large" as const;
  constructor(
    readonly field: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(`${field}: ${size} items exceed the limit of ${limit}`);
  }
}

export class NotFound extends IdentityMapError {
  readonly code = "not_found" as const;
}

/** A lookup by a quarantined (shared) identifier: it names several devices, so none confidently. */
export class AmbiguousIdentifier extends IdentityMapError {
  readonly code = "ambiguous_identifier" as const;
  constructor(
    readonly field: string,
    readonly candidates: readonly string[],
  ) {
    super(`${field}: the identifier is shared by several devices`);
  }
}

export class Unauthenticated extends IdentityMapError {
  readonly code = "unauthenticated" as const;
}

export class PermissionDenied extends IdentityMapError {
  readonly code = "permission_denied" as const;
}

/** Retries of one key ran out of budget; reported per key, never hidden. */
export class RetryExhausted extends IdentityMapError {
  readonly code = "retry_exhausted" as const;
  constructor(
    readonly keys: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(`CAS retries exhausted on ${keys.join(", ")}`, options);
  }
}

/** The service is draining for shutdown and takes no new requests. */
export class ShuttingDown extends IdentityMapError {
  readonly code = "shutting_down" as const;
}

/** A setting cannot be used; `variable` names it (IDMAP_*, a CLI flag, or the config file). */
export class ConfigError extends IdentityMapError {
  readonly code = "config_error" as const;
  constructor(
    readonly variable: string,
    reason: string,
    /** For an unknown setting: the known one nearest to it, when one is near (a typo). */
    readonly suggestion?: string,
  ) {
    super(`${variable}: ${reason}`);
  }
}

/** A key path or namespace that the encoding cannot produce or read back. */
export class KeyPathError extends IdentityMapError {
  readonly code = "invalid_key_path" as const;
}

/** A request ran past IDMAP_REQUEST_TIMEOUT: the backend is slow or unavailable (503 / UNAVAILABLE). */
export class RequestTimeout extends IdentityMapError {
  readonly code = "request_timeout" as const;
}

/**
 * A change stream asked to resume after a revision the store no longer remembers (its history was
 * compacted or trimmed), or one the store never reached (it lost changes). Nothing can fill the gap:
 * the follower takes a new snapshot, at `revision` or later, and follows from there.
 */
export class RevisionCompacted extends IdentityMapError {
  readonly code = "revision_compacted" as const;
  constructor(
    readonly field: string,
    /** The store's newest revision now: a snapshot taken now is at least this new. */
    readonly revision: number,
    reason: string,
  ) {
    super(`${field}: ${reason}; take a new snapshot (GET /v1/snapshot) and follow from its revision`);
  }
}

/** Every error code the service can report; the status table (src/adapters/error-status.ts) has one row per code. */
export type ErrorCode = (
  | RevisionConflict
  | KvUnavailable
  | WriteOutcomeUnknown
  | DbUnavailable
  | InvalidArgument
  | BatchTooLarge
  | NotFound
  | AmbiguousIdentifier
  | Unauthenticated
  | PermissionDenied
  | RetryExhausted
  | ConfigError
  | KeyPathError
  | RequestTimeout
  | ShuttingDown
  | RevisionCompacted
)["code"];
