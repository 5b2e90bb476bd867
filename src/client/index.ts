/**
 * `identity-map/client`: the typed REST client (re-exported from the `@identity-map/client` package,
 * which installs without the server: ADR 0013) and the service's own key derivation and precedence,
 * which are the server's domain code and so stay here.
 */
export * from "./keys.js";
export {
  backoffMs,
  DEFAULT_RETRY,
  IdentityMapApiError,
  IdentityMapClient,
  IdentityMapConnectionError,
  type ApiErrorCode,
  type BatchLookupRequest,
  type BoundKey,
  type CanonicalDevice,
  type CanonicalRecord,
  type ClientOptions,
  type DeviceList,
  type DeviceListQuery,
  type HistoryEntry,
  type HistoryPage,
  type HistoryQuery,
  type ListedDevice,
  type LookupQuery,
  type LookupRequest,
  type LookupResult,
  type PublishOutcome,
  type PublishResult,
  type ResolveResult,
  type RetryPolicy,
  type Tombstone,
} from "@identity-map/client";
export { IdentityCache, type IdentityCacheOptions, type LocalLookupResult } from "./identity-cache.js";
export {
  followChanges,
  readSnapshot,
  RevisionGone,
  StreamError,
  type StreamConnection,
  type StreamItem,
} from "./change-stream.js";
export { parseSse, type SseEvent } from "./sse.js";
export type { ChangeEvent, Heartbeat, SnapshotEnd, SnapshotLine, StreamKey, StreamRecord } from "./stream-types.js";
