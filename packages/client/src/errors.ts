/** Codes the service answers with (`error.code`); a newer service may add others. */
export type ApiErrorCode =
  | "invalid_argument"
  | "invalid_key_path"
  | "batch_too_large"
  | "not_found"
  | "unauthenticated"
  | "permission_denied"
  | "unsupported_media_type"
  | "kv_unavailable"
  | "db_unavailable"
  | "write_outcome_unknown"
  | "request_timeout"
  | "internal"
  | (string & {});

/** A non-2xx answer, with the service's error code and the field at fault when it names one. */
export class IdentityMapApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "IdentityMapApiError";
  }

  /** 503: the service's KV or database did not answer; the same request may succeed later. */
  get retryable(): boolean {
    return this.status === 503;
  }
}

/** The service could not be reached at all (refused, reset, timed out). */
export class IdentityMapConnectionError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = "IdentityMapConnectionError";
  }
}
