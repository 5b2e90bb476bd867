import { describe, expect, it } from "vitest";
import {
  assertSafeExposure,
  Authenticator,
  canonicalSubject,
  isLoopback,
  parseSubjectRoles,
} from "../../src/app/auth.js";
import { loadConfig } from "../../src/app/config.js";
import { ConfigError, PermissionDenied, Unauthenticated } from "../../src/domain/errors.js";

const tokens = new Map([
  ["reader-secret", "reader"],
  ["writer-secret", "writer"],
] as const);
const subjects = parseSubjectRoles("CN=poller-1,O=Example:reader; O=Example,CN=registry:writer");
const auth = new Authenticator(tokens, subjects);

describe("Authenticator: credentials to principal", () => {
  it("a bearer token gives its role; the actor names the token without revealing it", () => {
    const r = auth.authorize({ authorization: "Bearer reader-secret" }, "reader");
    expect(r.role).toBe("reader");
    expect(r.actor).toMatch(/^token:[0-9a-f]{8}$/);
    expect(r.actor).not.toContain("secret");
    expect(auth.authorize({ authorization: "bearer writer-secret" }, "writer").role).toBe("writer");
    expect(auth.authorize({ authorization: "Bearer writer-secret" }, "reader").role).toBe("writer");
  });

  it("no credentials, a wrong token or a malformed header: Unauthenticated; too weak a role: PermissionDenied", () => {
    expect(() => auth.authorize({}, "reader")).toThrow(Unauthenticated);
    expect(() => auth.authorize({ authorization: "Bearer nope" }, "reader")).toThrow(Unauthenticated);
    expect(() => auth.authorize({ authorization: "Basic cmVhZGVyLXNlY3JldA==" }, "reader")).toThrow(Unauthenticated);
    expect(() => auth.authorize({ authorization: "Bearer reader-secret" }, "writer")).toThrow(PermissionDenied);
  });

  it("a verified certificate subject maps to a role whatever the attribute order; an unknown subject is denied", () => {
    expect(auth.authorize({ peerSubject: { O: "Example", CN: "poller-1" } }, "reader")).toEqual({
      actor: "cert:CN=poller-1,O=Example",
      role: "reader",
    });
    expect(auth.authorize({ peerSubject: { CN: "registry", O: "Example" } }, "writer").role).toBe("writer");
    expect(() => auth.authorize({ peerSubject: { CN: "poller-1", O: "Example" } }, "writer")).toThrow(PermissionDenied);
    expect(() => auth.authorize({ peerSubject: { CN: "stranger", O: "Example" } }, "reader")).toThrow(PermissionDenied);
    expect(() => auth.authorize({ peerSubject: { CN: "poller-1", O: "Example", OU: "extra" } }, "reader")).toThrow(
      PermissionDenied,
    );
  });

  it("a token, when sent, decides even with a certificate", () => {
    expect(
      auth.authorize({ authorization: "Bearer writer-secret", peerSubject: { CN: "poller-1", O: "Example" } }, "writer")
        .role,
    ).toBe("writer");
    expect(() =>
      auth.authorize({ authorization: "Bearer bad", peerSubject: { CN: "poller-1", O: "Example" } }, "reader"),
    ).toThrow(Unauthenticated);
  });

  it("with nothing configured, auth is off: everyone is an anonymous writer", () => {
    const off = new Authenticator(new Map(), new Map());
    expect(off.enabled).toBe(false);
    expect(off.describe()).toBe("off");
    expect(off.authorize({}, "writer")).toEqual({ actor: "anonymous", role: "writer" });
    expect(auth.describe()).toBe("bearer tokens + mTLS subjects");
  });
});

describe("subjects", () => {
  it("one canonical spelling: types upper-cased, pairs sorted, escapes kept", () => {
    expect(canonicalSubject("o=Example, cn=poller-1")).toBe("CN=poller-1,O=Example");
    expect(canonicalSubject({ CN: "poller-1", O: "Example" })).toBe("CN=poller-1,O=Example");
    expect(canonicalSubject("CN=Smith\\, John,O=Example")).toBe(canonicalSubject({ CN: "Smith, John", O: "Example" }));
    expect(canonicalSubject({ CN: "x", OU: ["b", "a"] })).toBe("CN=x,OU=a,OU=b");
  });

  it("IDMAP_MTLS_ROLES entries are <subject>:<role> separated by ;", () => {
    expect([...parseSubjectRoles("CN=a,O=X:reader;CN=b:writer")]).toEqual([
      ["CN=a,O=X", "reader"],
      ["CN=b", "writer"],
    ]);
    expect(() => parseSubjectRoles("CN=a:admin")).toThrow(ConfigError);
    expect(() => parseSubjectRoles("nonsense:reader")).toThrow(ConfigError);
  });
});

describe("configuration", () => {
  const base = { IDMAP_DATA_DIR: ":memory:" };

  it("reads TLS files, mTLS roles and the open-service opt-in", () => {
    const c = loadConfig({
      ...base,
      IDMAP_TLS_CERT: "/x/server.crt",
      IDMAP_TLS_KEY: "/x/server.key",
      IDMAP_TLS_CA: "/x/ca.crt",
      IDMAP_MTLS_ROLES: "CN=poller-1,O=Example:reader",
    });
    expect(c.tls).toEqual({ certFile: "/x/server.crt", keyFile: "/x/server.key", caFile: "/x/ca.crt" });
    expect(c.mtlsRoles.get("CN=poller-1,O=Example")).toBe("reader");
    expect(c.allowUnauthenticated).toBe(false);
    expect(loadConfig(base).tls).toBeNull();
    expect(loadConfig({ ...base, IDMAP_ALLOW_UNAUTHENTICATED: "true" }).allowUnauthenticated).toBe(true);
  });

  it("refuses half a TLS setup, mTLS roles without a CA, and a malformed opt-in", () => {
    expect(() => loadConfig({ ...base, IDMAP_TLS_CERT: "/x/server.crt" })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, IDMAP_TLS_CA: "/x/ca.crt" })).toThrow(ConfigError);
    expect(() =>
      loadConfig({ ...base, IDMAP_TLS_CERT: "/c", IDMAP_TLS_KEY: "/k", IDMAP_MTLS_ROLES: "CN=a:reader" }),
    ).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, IDMAP_ALLOW_UNAUTHENTICATED: "yes" })).toThrow(ConfigError);
  });

  it("without auth, only loopback unless IDMAP_ALLOW_UNAUTHENTICATED=true", () => {
    expect(() => assertSafeExposure(loadConfig(base))).not.toThrow();
    expect(() => assertSafeExposure(loadConfig({ ...base, IDMAP_HOST: "::1" }))).not.toThrow();
    expect(() => assertSafeExposure(loadConfig({ ...base, IDMAP_HOST: "0.0.0.0" }))).toThrow(
      expect.objectContaining({ code: "config_error", variable: "IDMAP_HOST" }),
    );
    expect(() =>
      assertSafeExposure(loadConfig({ ...base, IDMAP_HOST: "0.0.0.0", IDMAP_ALLOW_UNAUTHENTICATED: "true" })),
    ).not.toThrow();
    expect(() =>
      assertSafeExposure(loadConfig({ ...base, IDMAP_HOST: "0.0.0.0", IDMAP_AUTH_TOKENS: "t:reader" })),
    ).not.toThrow();
    expect(["127.0.0.1", "127.1.2.3", "localhost", "[::1]"].every(isLoopback)).toBe(true);
    expect(["0.0.0.0", "::", "10.0.0.1", "example.com"].some(isLoopback)).toBe(false);
  });
});
