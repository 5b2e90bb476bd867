import pino from "pino";
import type { Config } from "./config.js";

export interface LoggerOptions {
  /** Where lines go (stdout by default); tests capture them here. */
  readonly destination?: pino.DestinationStream;
  /** Text that must never reach a log line (tokens, passwords): replaced wherever it appears. */
  readonly secrets?: Iterable<string>;
}

const REDACTED = "[redacted]";

/**
 * JSON lines on stdout. Fields that carry credentials are redacted by name; on top of that, every
 * configured secret is scrubbed from the finished line, so one that ends up in an error message or
 * a URL does not leak either.
 */
export function createLogger(level: string, options: LoggerOptions = {}): pino.Logger {
  const secrets = [...new Set(options.secrets ?? [])].filter((s) => s.length >= 4);
  // The JSON-escaped form too, for a secret with a quote or a backslash in it.
  const needles = [...new Set(secrets.flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]))].sort(
    (a, b) => b.length - a.length,
  );
  const opts: pino.LoggerOptions = {
    level,
    base: { service: "identity-map" },
    redact: {
      paths: [
        "token",
        "*.token",
        "authorization",
        "*.authorization",
        "cookie",
        "*.cookie",
        "req.headers.authorization",
        "req.headers.cookie",
        "headers.authorization",
        "headers.cookie",
        "*.headers.authorization",
        "metadata.authorization",
        "password",
        "*.password",
      ],
      censor: REDACTED,
    },
    ...(needles.length > 0 ? { hooks: { streamWrite: (line: string) => scrub(line, needles) } } : {}),
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

/** The logger the service runs with: the configured level, and every credential in the config scrubbed. */
export function appLogger(config: Config, destination?: pino.DestinationStream): pino.Logger {
  return createLogger(config.logLevel, { secrets: configSecrets(config), ...(destination ? { destination } : {}) });
}

/** Bearer tokens, the webhooks' signing secret, and the passwords inside backend URLs. */
export function configSecrets(config: Config): string[] {
  const out = [...config.authTokens.keys()];
  const webhookSecret = (config.raw.IDMAP_WEBHOOK_SECRET ?? "").trim();
  if (webhookSecret !== "") out.push(webhookSecret);
  for (const url of [config.databaseUrl, config.redisUrl, config.natsUrl, ...config.etcdEndpoints]) {
    try {
      const u = new URL(url);
      if (u.password) out.push(u.password, decodeURIComponent(u.password));
    } catch {
      // not a URL: nothing to hide
    }
  }
  return out;
}

function scrub(line: string, needles: readonly string[]): string {
  let out = line;
  for (const n of needles) if (out.includes(n)) out = out.split(n).join(REDACTED);
  return out;
}

export { silentLogger, type Logger } from "../ports/logger.js";
