import { ConfigError } from "../../domain/errors.js";
import { type Config, duration, int } from "../config.js";

export interface StreamSettings {
  readonly heartbeatMs: number;
  /** Changes each instance keeps in memory for followers slightly behind. */
  readonly bufferSize: number;
  readonly webhooks: {
    readonly urls: readonly string[];
    readonly secret: string;
    /** Longest wait between two attempts of one post. */
    readonly retryMaxMs: number;
  };
}

/** The change stream's and webhooks' settings, validated at start (errors name the variable). */
export function streamSettings(config: Config): StreamSettings {
  const get = (k: string) => (config.raw[k] ?? "").trim();
  const heartbeatMs = duration("IDMAP_CHANGES_HEARTBEAT", get("IDMAP_CHANGES_HEARTBEAT"));
  if (heartbeatMs < 100) throw new ConfigError("IDMAP_CHANGES_HEARTBEAT", "must be at least 100ms");
  const urls = get("IDMAP_WEBHOOK_URLS")
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "");
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new ConfigError("IDMAP_WEBHOOK_URLS", `${JSON.stringify(u)} is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new ConfigError("IDMAP_WEBHOOK_URLS", `${JSON.stringify(u)}: only http and https`);
  }
  const secret = get("IDMAP_WEBHOOK_SECRET");
  if (urls.length > 0 && secret.length < 16)
    throw new ConfigError("IDMAP_WEBHOOK_SECRET", "at least 16 characters are required when IDMAP_WEBHOOK_URLS is set");
  return {
    heartbeatMs,
    bufferSize: int("IDMAP_CHANGES_BUFFER", get("IDMAP_CHANGES_BUFFER"), 100, 10_000_000),
    webhooks: { urls, secret, retryMaxMs: duration("IDMAP_WEBHOOK_RETRY_MAX", get("IDMAP_WEBHOOK_RETRY_MAX")) },
  };
}
