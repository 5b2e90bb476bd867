import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/app/config.js";
import { ConfigError } from "../../src/domain/errors.js";

describe("config", () => {
  it("has the documented defaults: embedded KV, SQLite, flag off, loopback", () => {
    const c = loadConfig({});
    expect([c.kvBackend, c.db, c.mode, c.host, c.restPort, c.grpcPort, c.namespace, c.maxBatch]).toEqual([
      "embedded",
      "sqlite",
      "off",
      "127.0.0.1",
      8080,
      50051,
      "device_canonical_map",
      10000,
    ]);
    expect(c.frontends).toEqual(["rest", "grpc"]);
    expect(c.weakKeyTtlMs).toBe(24 * 3600_000);
    expect(c.freshnessWindowMs).toBe(15 * 60_000);
  });

  it("an unknown backend fails at start naming the variable and the allowed values", () => {
    expect(() => loadConfig({ IDMAP_KV_BACKEND: "mongodb" })).toThrow(ConfigError);
    const names = (variable: string) => expect.objectContaining({ code: "config_error", variable });
    expect(() => loadConfig({ IDMAP_KV_BACKEND: "mongodb" })).toThrow(names("IDMAP_KV_BACKEND"));
    expect(() => loadConfig({ CANONICAL_IDENTITY_MAP_ENABLED: "yes" })).toThrow(
      names("CANONICAL_IDENTITY_MAP_ENABLED"),
    );
    expect(() => loadConfig({ IDMAP_REST_PORT: "80a" })).toThrow(names("IDMAP_REST_PORT"));
    expect(() => loadConfig({ IDMAP_DB: "postgres" })).toThrow(names("IDMAP_DATABASE_URL"));
    expect(() => loadConfig({ IDMAP_AUTH_TOKENS: "abc:admin" })).toThrow(names("IDMAP_AUTH_TOKENS"));
    expect(() => loadConfig({ IDMAP_WEAK_KEY_TTL: "a day" })).toThrow(names("IDMAP_WEAK_KEY_TTL"));
  });

  it("refuses a bearer token shorter than 16 characters, naming IDMAP_AUTH_TOKENS and not echoing it", () => {
    let err: unknown;
    try {
      loadConfig({ IDMAP_AUTH_TOKENS: "a-long-enough-token-1:writer,fifteen-chars-x:reader" });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "config_error", variable: "IDMAP_AUTH_TOKENS" });
    expect((err as ConfigError).message).not.toContain("fifteen-chars-x");
    expect(loadConfig({ IDMAP_AUTH_TOKENS: "sixteen-chars-xx:reader" }).authTokens.get("sixteen-chars-xx")).toBe(
      "reader",
    );
  });

  it("IDMAP_KV_REPLICAS: 1 on one NATS server, 3 when IDMAP_NATS_URL names several; given, 1 to 5", () => {
    expect(loadConfig({}).kvReplicas).toBe(1);
    expect(loadConfig({ IDMAP_NATS_URL: "nats://a:4222" }).kvReplicas).toBe(1);
    expect(loadConfig({ IDMAP_NATS_URL: "nats://a:4222, nats://b:4222,nats://c:4222" }).kvReplicas).toBe(3);
    expect(loadConfig({ IDMAP_NATS_URL: "nats://a:4222,nats://b:4222", IDMAP_KV_REPLICAS: "1" }).kvReplicas).toBe(1);
    expect(loadConfig({ IDMAP_KV_REPLICAS: "5" }).kvReplicas).toBe(5);
    for (const bad of ["0", "6", "three"]) expect(() => loadConfig({ IDMAP_KV_REPLICAS: bad })).toThrow(ConfigError);
  });

  it("reads a YAML file; the environment wins", () => {
    const dir = mkdtempSync(join(tmpdir(), "idmap-cfg-"));
    const file = join(dir, "idmap.yaml");
    writeFileSync(
      file,
      'rest_port: 9090\nIDMAP_KV_BACKEND: memory\ncanonical_identity_map_enabled: on\nauth_tokens: ["t1-reader-0123456789:reader", "t2-writer-0123456789:writer"]\nweak_key_ttl: 2h\n',
    );
    const c = loadConfig({ IDMAP_KV_BACKEND: "redis" }, file);
    expect(c.restPort).toBe(9090);
    expect(c.kvBackend).toBe("redis");
    expect(c.mode).toBe("on");
    expect([...c.authTokens]).toEqual([
      ["t1-reader-0123456789", "reader"],
      ["t2-writer-0123456789", "writer"],
    ]);
    expect(c.weakKeyTtlMs).toBe(7_200_000);
    expect(() => loadConfig({}, join(dir, "missing.yaml"))).toThrow(
      expect.objectContaining({ code: "config_error", variable: "--config" }),
    );
  });
});

describe("unknown settings (issue 14)", () => {
  const dir = mkdtempSync(join(tmpdir(), "idmap-config-unknown-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses a misspelled YAML key, naming it and the nearest known one", () => {
    const file = join(dir, "typo.yaml");
    writeFileSync(file, "rest_prot: 9090\nkv_backend: memory\n");
    expect(() => loadConfig({}, file)).toThrow(
      expect.objectContaining({ code: "config_error", variable: `${file}: rest_prot`, suggestion: "rest_port" }),
    );
    writeFileSync(file, "IDMAP_REST_PORT: 9090\ngrpc_port: 9091\n");
    expect(loadConfig({}, file)).toMatchObject({ restPort: 9090, grpcPort: 9091 });
  });

  it("refuses an unknown IDMAP_ variable, suggesting the nearest, and leaves tooling variables alone", () => {
    expect(() => loadConfig({ IDMAP_KV_BAKEND: "memory" })).toThrow(
      expect.objectContaining({ code: "config_error", variable: "IDMAP_KV_BAKEND", suggestion: "IDMAP_KV_BACKEND" }),
    );
    expect(() => loadConfig({ IDMAP_SOMETHING_ELSE_ENTIRELY: "1" })).toThrow(
      expect.objectContaining({ variable: "IDMAP_SOMETHING_ELSE_ENTIRELY", suggestion: undefined }),
    );
    expect(loadConfig({ IDMAP_TEST_BACKENDS: "memory", IDMAP_BENCH_NATS_URL: "x", PATH: "/bin" })).toMatchObject({
      restPort: 8080,
    });
  });
});
