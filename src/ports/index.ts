export type { Clock } from "./clock.js";
export type { AuditEntry, DeviceRow, DeviceStore, DeviceTouch, HistoryPage } from "./device-store.js";
export type { IdentityKv, KvChange, KvEntry, WatchHandle, WriteOptions } from "./identity-kv.js";
export type { KvOp, LookupVia, Metrics, PublishOutcome } from "./metrics.js";
export { silentLogger, type Logger } from "./logger.js";
