import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";

/** The console's files, shipped in the package (`console/` beside `dist/`), read once at start. */
const ASSETS = new URL("../../../console/", import.meta.url);

const FILES = {
  "index.html": "text/html; charset=utf-8",
  "console.js": "text/javascript; charset=utf-8",
  "console.css": "text/css; charset=utf-8",
} as const;

/**
 * The operator console at /console (ADR 0016): static files, no data, so no auth of their own; the
 * page calls the /v1 API with the operator's token. The CSP keeps the page to this origin: it loads
 * nothing from the network and runs no inline script.
 */
export async function registerConsole(f: FastifyInstance<any, any, any, any, any>): Promise<void> {
  const body = new Map<string, Buffer>();
  for (const name of Object.keys(FILES)) body.set(name, readFileSync(new URL(name, ASSETS)));
  const headers = {
    "content-security-policy":
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
  };
  const send = (name: keyof typeof FILES) => async (_req: unknown, reply: any) =>
    reply.headers({ ...headers, "content-type": FILES[name] }).send(body.get(name));
  f.get("/console", { schema: { hide: true } }, async (_req, reply) => reply.redirect("/console/"));
  f.get("/console/", { schema: { hide: true } }, send("index.html"));
  for (const name of Object.keys(FILES) as (keyof typeof FILES)[])
    f.get(`/console/${name}`, { schema: { hide: true } }, send(name));
}
