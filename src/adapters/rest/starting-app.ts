import Fastify, { type FastifyInstance } from "fastify";

/** What the service knows while it cannot open its stores yet. */
export interface StartingState {
  readonly mode: "off" | "shadow" | "on";
  /** Which store the last attempt could not reach, and why (for /readyz and the 503 body). */
  current(): { readonly kv: boolean; readonly db: boolean; readonly code: string; readonly message: string };
}

/**
 * The REST front-end of a service that is up but not ready: its KV or database did not answer at start,
 * and it keeps trying (serve). The process is alive (`/healthz` 200), not ready (`/readyz` 503 naming the
 * store), and every other route answers 503 with the error envelope, never a refused connection, so a
 * load balancer and a client see the same thing as during an outage later on.
 */
export async function buildStartingRestApp(
  state: StartingState,
  options: { https?: { cert: Buffer; key: Buffer } } = {},
): Promise<FastifyInstance> {
  const f = Fastify({
    ...(options.https ? { https: { cert: options.https.cert, key: options.https.key } } : {}),
    logger: false,
  });
  f.get("/healthz", async () => ({ status: "starting" as const }));
  f.get("/readyz", async (_req, reply) => {
    const s = state.current();
    return reply.status(503).send({
      status: "unavailable",
      kv: s.kv ? "ok" : "unavailable",
      db: s.db ? "ok" : "unavailable",
      mode: state.mode,
    });
  });
  f.setNotFoundHandler(async (_req, reply) => {
    const s = state.current();
    return reply
      .status(503)
      .header("retry-after", "5")
      .send({ error: { code: s.code, message: `the service is starting: ${s.message}` } });
  });
  return f;
}
