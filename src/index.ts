/**
 * `identity-map`: the service as a library (compose it, serve it, backfill it) and its key rules.
 * A REST client without the server's dependencies is `identity-map/client`.
 */
export { createApp, type App, type AppOverrides } from "./app/container.js";
export { loadConfig, type Config } from "./app/config.js";
export { startServer } from "./app/server.js";
export {
  runBackfill,
  type BackfillOptions,
  type BackfillReport,
  type BackfillSummary,
} from "./app/backfill/backfill.js";
export * from "./client/keys.js";
