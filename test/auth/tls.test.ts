import * as grpc from "@grpc/grpc-js";
import { request } from "node:https";
import { request as plainRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../../src/app/server.js";
import { makePki, type TestPki } from "../support/certs.js";
import { testApp } from "../support/app.js";
import { identityMapClient, statusOf, type IdentityMapClient } from "../support/grpc.js";

const READER = "reader-token-3f1c9a";
const WRITER = "writer-token-77be02";

let pki: TestPki;
let server: RunningServer;

beforeAll(async () => {
  pki = makePki({
    poller: "/O=Example/CN=poller-1",
    registry: "/O=Example/CN=registry",
    stranger: "/O=Example/CN=stranger",
    "untrusted-poller": "/O=Example/CN=poller-1",
  });
  const { app, config } = await testApp({
    IDMAP_REST_PORT: "0",
    IDMAP_GRPC_PORT: "0",
    IDMAP_AUTH_TOKENS: `${READER}:reader,${WRITER}:writer`,
    IDMAP_TLS_CERT: pki.server.certFile,
    IDMAP_TLS_KEY: pki.server.keyFile,
    IDMAP_TLS_CA: pki.ca.certFile,
    IDMAP_MTLS_ROLES: "CN=poller-1,O=Example:reader;CN=registry,O=Example:writer",
  });
  server = await startServer(config, app);
});
afterAll(async () => {
  await server?.close();
  pki?.cleanup();
});

const update = (n: number) => ({
  device_id: `tls-dev-${n}`,
  mac: `02:00:00:00:10:${n.toString(16).padStart(2, "0")}`,
  source: "agent",
});

describe("gRPC over mTLS: the client certificate's subject is the caller", () => {
  const clients: IdentityMapClient[] = [];
  const connect = (name: string | null) => {
    const cert = name ? pki.clients[name]! : undefined;
    const c = identityMapClient(
      `127.0.0.1:${server.grpcPort}`,
      grpc.credentials.createSsl(pki.ca.cert, cert?.key ?? null, cert?.cert ?? null),
      {
        // The server certificate names localhost and 127.0.0.1; TLS SNI may not carry an IP address.
        "grpc.ssl_target_name_override": "localhost",
      },
    );
    clients.push(c);
    return c;
  };
  afterAll(() => {
    for (const c of clients) c.close();
  });

  it("a writer certificate publishes; the audit trail names its subject", async () => {
    const registry = connect("registry");
    const r = await registry.call("PublishDeviceUpdates", { updates: [update(1)] });
    expect(r.results[0].outcome).toBe("PUBLISH_OUTCOME_CREATED");
    const h = await registry.call("GetDeviceHistory", { device_id: "tls-dev-1" });
    expect(h.entries.length).toBeGreaterThan(0);
    expect(h.entries.every((e: { actor: string }) => e.actor === "cert:CN=registry,O=Example")).toBe(true);
  });

  it("a reader certificate looks up but may not publish", async () => {
    const poller = connect("poller");
    const hit = await poller.call("GetCanonicalDevice", {
      identity_keys: [{ kind: "IDENTITY_KIND_MAC", value: "02:00:00:00:10:01" }],
    });
    expect(hit).toMatchObject({ found: true, record: { canonical_device_id: "tls-dev-1" } });
    expect((await statusOf(poller.call("PublishDeviceUpdates", { updates: [update(2)] }))).code).toBe(
      grpc.status.PERMISSION_DENIED,
    );
    // A bearer token, when sent, decides: the same connection publishes with the writer token.
    const r = await poller.call("PublishDeviceUpdates", { updates: [update(2)] }, WRITER);
    expect(r.results[0].outcome).toBe("PUBLISH_OUTCOME_CREATED");
  });

  it("a certificate from the CA with an unknown subject is refused", async () => {
    const stranger = connect("stranger");
    expect(
      (
        await statusOf(
          stranger.call("GetCanonicalDevice", {
            identity_keys: [{ kind: "IDENTITY_KIND_DEVICE_ID", value: "tls-dev-1" }],
          }),
        )
      ).code,
    ).toBe(grpc.status.PERMISSION_DENIED);
  });

  it("no client certificate, or one from another CA (even with a known subject), fails the handshake", async () => {
    for (const name of [null, "untrusted-poller"]) {
      const s = await statusOf(
        connect(name).call("GetCanonicalDevice", {
          identity_keys: [{ kind: "IDENTITY_KIND_DEVICE_ID", value: "tls-dev-1" }],
        }),
      );
      expect(s.code).toBe(grpc.status.UNAVAILABLE);
    }
  });

  it("a plaintext client cannot talk to the TLS port", async () => {
    const plain = identityMapClient(`127.0.0.1:${server.grpcPort}`);
    clients.push(plain);
    expect(
      (
        await statusOf(
          plain.call("GetCanonicalDevice", {
            identity_keys: [{ kind: "IDENTITY_KIND_DEVICE_ID", value: "tls-dev-1" }],
          }),
        )
      ).code,
    ).toBe(grpc.status.UNAVAILABLE);
  });
});

describe("REST over TLS with bearer tokens", () => {
  const call = (method: string, path: string, token?: string, body?: unknown) =>
    new Promise<{ status: number; json: any }>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          host: "127.0.0.1",
          port: server.restPort,
          path,
          method,
          ca: pki.ca.cert,
          servername: "localhost",
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(payload ? { "content-type": "application/json" } : {}),
          },
        },
        (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
        },
      );
      req.on("error", reject);
      req.end(payload);
    });

  it("401 without a token (and before the body is even validated), 401 with an unknown one", async () => {
    const none = await call("POST", "/v1/device-updates", undefined, { updates: [update(3)] });
    expect(none.status).toBe(401);
    expect(none.json.error.code).toBe("unauthenticated");
    expect((await call("POST", "/v1/device-updates", undefined, { nonsense: true })).status).toBe(401);
    expect((await call("GET", "/v1/canonical-devices/tls-dev-1", "not-a-token")).status).toBe(401);
  });

  it("403 for a reader publishing, 200 for reader lookups and a writer publishing", async () => {
    const denied = await call("POST", "/v1/device-updates", READER, { updates: [update(3)] });
    expect(denied.status).toBe(403);
    expect(denied.json.error.code).toBe("permission_denied");
    const ok = await call("POST", "/v1/device-updates", WRITER, { updates: [update(3)] });
    expect(ok.status).toBe(200);
    expect(ok.json.results[0].outcome).toBe("created");
    const look = await call("POST", "/v1/canonical-devices/lookup", READER, {
      identity_keys: [{ kind: "mac", value: "02:00:00:00:10:03" }],
    });
    expect(look.status).toBe(200);
    expect(look.json.record.canonical_device_id).toBe("tls-dev-3");
    const hist = await call("GET", "/v1/canonical-devices/tls-dev-3/history", READER);
    expect(hist.status).toBe(200);
    expect(hist.json.entries[0].actor).toMatch(/^token:[0-9a-f]{8}$/);
    expect(JSON.stringify(hist.json)).not.toContain(WRITER);
  });

  it("health stays open; plain HTTP on the TLS port gets no answer", async () => {
    expect((await call("GET", "/healthz")).status).toBe(200);
    const plain = await new Promise<string>((resolve) => {
      const req = plainRequest({ host: "127.0.0.1", port: server.restPort, path: "/healthz" }, (res) =>
        resolve(`status ${res.statusCode}`),
      );
      req.on("error", () => resolve("error"));
      req.end();
    });
    expect(plain).not.toBe("status 200");
  });
});
