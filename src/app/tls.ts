import { readFileSync } from "node:fs";
import { ConfigError } from "../domain/errors.js";
import type { TlsMaterial } from "../ports/identity-service.js";
import type { Config } from "./config.js";

export type { TlsMaterial };

/** Reads the files named by IDMAP_TLS_CERT, IDMAP_TLS_KEY and IDMAP_TLS_CA; null when TLS is off. */
export function loadTls(config: Pick<Config, "tls">): TlsMaterial | null {
  if (!config.tls) return null;
  const { certFile, keyFile, caFile } = config.tls;
  return {
    cert: read("IDMAP_TLS_CERT", certFile),
    key: read("IDMAP_TLS_KEY", keyFile),
    ...(caFile ? { ca: read("IDMAP_TLS_CA", caFile) } : {}),
  };
}

function read(name: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new ConfigError(name, `cannot read ${file}: ${(e as Error).message}`);
  }
}
