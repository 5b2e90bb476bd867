import pino from "pino";

/** The structured logger every part of the app takes (pino's shape, so tests can pass a silent one). */
export interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** JSON lines on stdout; tokens and authorization headers are redacted wherever they appear. */
export function createLogger(level: string): pino.Logger {
  return pino({
    level,
    base: { service: "identity-map" },
    redact: {
      paths: ["token", "*.token", "authorization", "*.authorization", "req.headers.authorization", "headers.authorization", "password", "*.password"],
      censor: "[redacted]",
    },
  });
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };
