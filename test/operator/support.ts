import type { FastifyInstance } from "fastify";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { testApp, type ManualClock } from "../support/app.js";

export const WRITER_TOKEN = "operator-writer-token-0001";
export const READER_TOKEN = "operator-reader-token-0001";

export interface OperatorWorld {
  readonly app: App;
  readonly rest: FastifyInstance;
  readonly clock: ManualClock;
  /** inject as the writer (default) or the reader. */
  call(
    method: "GET" | "POST" | "PUT" | "DELETE",
    url: string,
    payload?: object,
    token?: string,
  ): Promise<{ status: number; body: any }>;
  publish(updates: readonly object[]): Promise<any[]>;
  close(): Promise<void>;
}

/** An app with auth on (a writer and a reader token), its REST front-end authorizing like the server's. */
export async function operatorWorld(env: Record<string, string> = {}, kv: IdentityKv = new MemoryKv()) {
  const { app, clock } = await testApp(
    { IDMAP_AUTH_TOKENS: `${WRITER_TOKEN}:writer,${READER_TOKEN}:reader`, ...env },
    kv,
  );
  const rest = await buildRestApp(app, {
    authorize: (req, need) =>
      app.authenticator.authorize({ authorization: req.headers.authorization, transport: "rest" }, need),
  });
  const call: OperatorWorld["call"] = async (method, url, payload, token = WRITER_TOKEN) => {
    const r = await rest.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(payload ? { payload } : {}),
    });
    return { status: r.statusCode, body: r.body ? r.json() : undefined };
  };
  const world: OperatorWorld = {
    app,
    rest,
    clock,
    call,
    async publish(updates) {
      const r = await call("POST", "/v1/device-updates", { updates });
      if (r.status !== 200) throw new Error(`publish: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.results;
    },
    async close() {
      await rest.close();
      await app.close();
    },
  };
  return world;
}
