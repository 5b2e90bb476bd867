/** The structured logger every part of the service takes (pino's shape, so tests can pass a silent one). */
export interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** A logger that drops everything: the default for adapters and tests that do not care. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };
