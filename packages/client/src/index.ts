/**
 * `@identity-map/client`: a typed REST client for identity-map with no server dependency. Its types
 * are generated from the service's OpenAPI document.
 */
export { IdentityMapClient, type ClientOptions } from "./client.js";
export { IdentityMapApiError, IdentityMapConnectionError, type ApiErrorCode } from "./errors.js";
export { backoffMs, DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
export type * from "./types.js";
export type { components, operations, paths } from "./generated/openapi.js";
