import { type ErrorCode, IdentityMapError } from "../domain/errors.js";

/** gRPC status numbers (grpc/status.h), so this table does not depend on a gRPC library. */
export const GRPC = {
  OK: 0,
  OUT_OF_RANGE: 11,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  FAILED_PRECONDITION: 9,
  PERMISSION_DENIED: 7,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

interface Status {
  readonly http: number;
  readonly grpc: number;
}

const INTERNAL: Status = { http: 500, grpc: GRPC.INTERNAL };

/**
 * The one table from domain error codes to HTTP and gRPC statuses; both front-ends use it. Keyed on
 * every code, so a new error without a row fails the typecheck. Codes that never leave the service
 * (a conflict is retried, an exhausted retry is reported per key, config errors stop start-up) are
 * internal if one ever reaches a front-end.
 */
const TABLE: Readonly<Record<ErrorCode, Status>> = {
  invalid_argument: { http: 400, grpc: GRPC.INVALID_ARGUMENT },
  invalid_key_path: { http: 400, grpc: GRPC.INVALID_ARGUMENT },
  batch_too_large: { http: 413, grpc: GRPC.INVALID_ARGUMENT },
  not_found: { http: 404, grpc: GRPC.NOT_FOUND },
  ambiguous_identifier: { http: 409, grpc: GRPC.FAILED_PRECONDITION },
  unauthenticated: { http: 401, grpc: GRPC.UNAUTHENTICATED },
  permission_denied: { http: 403, grpc: GRPC.PERMISSION_DENIED },
  kv_unavailable: { http: 503, grpc: GRPC.UNAVAILABLE },
  db_unavailable: { http: 503, grpc: GRPC.UNAVAILABLE },
  write_outcome_unknown: { http: 503, grpc: GRPC.UNAVAILABLE },
  request_timeout: { http: 503, grpc: GRPC.UNAVAILABLE },
  shutting_down: { http: 503, grpc: GRPC.UNAVAILABLE },
  revision_compacted: { http: 410, grpc: GRPC.OUT_OF_RANGE },
  revision_conflict: INTERNAL,
  retry_exhausted: INTERNAL,
  config_error: INTERNAL,
};

export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly field?: string;
    /** ambiguous_identifier: the devices the identifier could name. */
    readonly candidates?: readonly string[];
    readonly reason?: string;
    /** revision_compacted: the store's newest revision; a new snapshot is at least this new. */
    readonly revision?: number;
  };
}

/** Status and body for any thrown value. Unknown errors are internal and say nothing about internals. */
export function describeError(e: unknown): { status: Status; body: ErrorBody } {
  if (e instanceof IdentityMapError) {
    const status = TABLE[e.code];
    const field = (e as { field?: unknown }).field;
    const candidates = (e as { candidates?: unknown }).candidates;
    const reason = (e as { reason?: unknown }).reason;
    const revision = (e as { revision?: unknown }).revision;
    return {
      status,
      body: {
        error: {
          code: status === INTERNAL ? "internal" : e.code,
          message: e.message,
          ...(typeof field === "string" ? { field } : {}),
          ...(Array.isArray(candidates) ? { candidates } : {}),
          ...(typeof reason === "string" ? { reason } : {}),
          ...(e.code === "revision_compacted" && typeof revision === "number" ? { revision } : {}),
        },
      },
    };
  }
  return { status: INTERNAL, body: { error: { code: "internal", message: "internal error" } } };
}
