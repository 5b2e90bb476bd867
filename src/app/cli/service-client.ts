import { IdentityMapClient } from "@identity-map/client";
import { buildRestApp } from "../../adapters/rest/rest-app.js";
import type { Config } from "../config.js";
import { createApp } from "../container.js";

export interface RemoteOptions {
  /** A running service, e.g. http://idmap:8080; absent: the configured stores, in this process. */
  readonly url?: string;
  readonly token?: string;
  /** Who the audit trail names for an in-process write. */
  readonly actor?: string;
}

/**
 * The client the CLI's service commands use. With --url it talks to a running service; without, it
 * serves the REST app in this process (no socket) and calls it the same way, so the CLI answers in
 * the API's shape, with the API's validation, whichever it talks to.
 */
export async function serviceClient(
  options: RemoteOptions,
  config: () => Config,
): Promise<{ client: IdentityMapClient; close(): Promise<void> }> {
  if (options.url) {
    const client = new IdentityMapClient({ baseUrl: options.url, ...(options.token ? { token: options.token } : {}) });
    return { client, close: async () => {} };
  }
  const app = await createApp({ ...config(), logLevel: "warn" });
  const actor = options.actor ?? "cli";
  // The operator runs this on the stores themselves, as a writer: a relational answer may be hydrated.
  const rest = await buildRestApp(app, { authorize: () => ({ actor, role: "writer" }) });
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const r = await rest.inject({
      method: (init?.method ?? "GET") as "GET" | "POST",
      url: `${url.pathname}${url.search}`,
      headers: init?.headers as Record<string, string>,
      ...(typeof init?.body === "string" ? { payload: init.body } : {}),
    });
    return new Response(r.statusCode === 204 ? null : r.body, { status: r.statusCode });
  };
  const client = new IdentityMapClient({ baseUrl: "http://in-process", fetch, retry: { attempts: 1 } });
  return {
    client,
    async close() {
      await rest.close();
      await app.close();
    },
  };
}
