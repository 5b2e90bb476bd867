import { appLogger } from "../../src/app/logger.js";
import type { Config } from "../../src/app/config.js";

/** The service's own logger (level and scrubbing from the config), writing into memory. */
export function capturedLogger(config: Config) {
  const chunks: string[] = [];
  const logger = appLogger(config, { write: (s: string) => void chunks.push(s) });
  const text = () => chunks.join("");
  const lines = () =>
    text()
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown> & { msg: string; level: number });
  return { logger, text, lines };
}
