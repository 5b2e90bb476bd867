import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { routeSchemas, type LazyRouteCompilers } from "../../src/adapters/rest/openapi.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";

/**
 * The REST schemas compile at first use and are not checked against the meta-schema at start
 * (issue 13: 1.5 s of every start). What the start no longer checks is checked here.
 */
describe("route schemas", () => {
  let app: App;
  let rest: FastifyInstance & { routeCompilers?: LazyRouteCompilers };
  beforeAll(async () => {
    ({ app } = await testApp({}, new MemoryKv()));
    rest = await buildRestApp(app);
    await rest.ready();
  });
  afterAll(async () => {
    await rest.close();
    await app.close();
  });

  it("every shared and route schema is valid JSON Schema (checked against the meta-schema)", () => {
    const shared = rest.getSchemas();
    expect(Object.keys(shared).length).toBeGreaterThan(10);
    // The start's validators skip the meta-schema; this one checks every schema it is given.
    const checking = routeSchemas.checkedValidatorFactory(
      shared as Parameters<typeof routeSchemas.validatorFactory>[0],
    );
    const routes = rest.routeCompilers!.validated;
    expect(routes.length).toBeGreaterThan(10);
    for (const route of routes) expect(() => checking(route), `${route.method} ${route.url}`).not.toThrow();
    // And a schema that is not JSON Schema is caught by it.
    const broken = { ...routes[0]!, schema: { type: "object", properties: { x: { type: "string", description: 5 } } } };
    expect(() => checking(broken)).toThrow(/schema is invalid/);
    // The start's own validators do not notice it: this check is what catches it.
    const unchecked = routeSchemas.validatorFactory(shared as Parameters<typeof routeSchemas.validatorFactory>[0]);
    expect(() => unchecked(broken)).not.toThrow();
  });

  it("every route's validator and serializer compiles", () => {
    const compilers = rest.routeCompilers!;
    compilers.compileAll();
    expect(compilers.waiting).toBe(0);
  });

  it("a validator compiled at its first request still refuses bad input with the field", async () => {
    const r = await rest.inject({ method: "POST", url: "/v1/device-updates", payload: { updates: [{ ip: 5 }] } });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.field).toMatch(/^body\.updates\[0\]\.ip/);
  });
});
