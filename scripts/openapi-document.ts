import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MemoryKv } from "../src/adapters/kv/memory-kv.js";
import { buildRestApp } from "../src/adapters/rest/rest-app.js";
import { loadConfig } from "../src/app/config.js";
import { createApp } from "../src/app/container.js";
import { silentLogger } from "../src/app/logger.js";

/*
 * The OpenAPI document as the service serves it, and the client's types generated from it. The client
 * package commits the generated file (packages/client/src/generated/openapi.ts); test/api checks that
 * it matches what this produces from the served document, so the two cannot drift.
 */

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const CLIENT_TYPES = join(ROOT, "packages/client/src/generated/openapi.ts");

/** /openapi.json of an in-memory service. */
export async function servedDocument(): Promise<unknown> {
  const config = loadConfig({ IDMAP_DATA_DIR: ":memory:", IDMAP_LOG_LEVEL: "silent" });
  const app = await createApp(config, { logger: silentLogger, kv: new MemoryKv() });
  const rest = await buildRestApp(app);
  try {
    return (await rest.inject({ url: "/openapi.json" })).json();
  } finally {
    await rest.close();
    await app.close();
  }
}

/** Writes the document to a fresh temporary directory; the caller removes it. */
export function writeDocument(doc: unknown): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "idmap-openapi-"));
  const file = join(dir, "openapi.json");
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return { dir, file };
}

/** Runs the openapi-typescript CLI (the same way the committed file was made) from `docFile` to `out`. */
export function generateTypes(docFile: string, out: string): void {
  execFileSync(join(ROOT, "node_modules/.bin/openapi-typescript"), [docFile, "-o", out], { stdio: "pipe" });
}

// `npm run client:types` regenerates the committed file after a change to the REST schemas.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { dir, file } = writeDocument(await servedDocument());
  try {
    generateTypes(file, CLIENT_TYPES);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
