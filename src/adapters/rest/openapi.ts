import { AjvCompiler } from "@fastify/ajv-compiler";
import { SerializerSelector } from "@fastify/fast-json-stringify-compiler";
import type { SwaggerOptions } from "@fastify/swagger";
import type { TSchema } from "typebox";
import { ErrorSchema, NAMED_SCHEMAS, ref } from "./schemas.js";

/*
 * What makes /openapi.json a contract a client can be generated from (checked by `redocly lint` in the
 * tests): named component schemas, an operation id and the security each operation needs, and a
 * description for every response.
 */

export { ref };

/** A registered schema as a response, with the description the document requires. */
export function described<T extends TSchema>(description: string, schema: T) {
  return ref(schema, description);
}

const errors = {
  400: described("Bad input: `field` names what is wrong; nothing was changed", ErrorSchema),
  401: described("No valid bearer token", ErrorSchema),
  403: described("The token's role may not do this", ErrorSchema),
  413: described("The body is larger than the limit", ErrorSchema),
  415: described("The body is not application/json", ErrorSchema),
  503: described("The KV or the database does not answer; retry with backoff", ErrorSchema),
};

export const documented = {
  swaggerOptions: {
    openapi: {
      info: {
        title: "identity-map",
        version: "1.0.0",
        description: "Canonical device identity: one device, one id, across DHCP churn.",
        license: { name: "Apache-2.0", url: "https://www.apache.org/licenses/LICENSE-2.0" },
      },
      // Relative: the document is served by the service it describes, wherever that listens.
      servers: [{ url: "/", description: "The service that serves this document" }],
      components: {
        securitySchemes: {
          bearer: {
            type: "http",
            scheme: "bearer",
            description: "A token from IDMAP_AUTH_TOKENS (`token:role`); without it configured, none is needed",
          },
        },
      },
    },
    // Component names are the schemas' $id (DeviceUpdate, LookupResult, ...), never def-0.
    refResolver: {
      buildLocalReference: (json: { $id?: unknown }, _baseUri: unknown, _fragment: unknown, i: number) =>
        typeof json.$id === "string" ? json.$id : `def-${i}`,
    },
  } satisfies SwaggerOptions,
  schemas: NAMED_SCHEMAS,
  errors,
  notFound: { 404: described("No such device, or no device holds the identifiers", ErrorSchema), ...errors },
  /** Operation id, and the bearer scheme when the operation needs a role. */
  op(operationId: string, role?: "reader" | "writer") {
    return {
      operationId,
      ...(role
        ? { security: [{ bearer: [] }], description: `Needs the \`${role}\` role when tokens are configured.` }
        : { security: [] }),
    };
  },
};

type ValidatorFactory = ReturnType<typeof AjvCompiler>;

/**
 * Bodies are checked, not coerced (`"ip": 123` is a 400, not "123"); query and path parameters arrive
 * as text, so numbers there are coerced and a `limit` can be typed an integer. The schemas are not
 * checked against the JSON Schema meta-schema at start (compiling it took 0.7 s of every start):
 * test/api/route-schemas.test.ts checks them, with `validateSchema` on.
 */
export const routeSchemas = {
  validatorFactory: validators(false),
  /** The same, checking every schema against the meta-schema first (the tests use it). */
  checkedValidatorFactory: validators(true),
};

function validators(validateSchema: boolean): ValidatorFactory {
  return ((externalSchemas) => {
    const base = { removeAdditional: false, allErrors: false, keywords: ["example"], validateSchema };
    const strict = AjvCompiler()(externalSchemas, { customOptions: { ...base, coerceTypes: false } });
    const coercing = AjvCompiler()(externalSchemas, { customOptions: { ...base, coerceTypes: true } });
    return (route) => (route.httpPart === "body" ? strict(route) : coercing(route));
  }) as ValidatorFactory;
}

type Validate = ((data: unknown) => unknown) & { errors?: unknown };
type Serialize = (data: unknown) => string;
type SerializerFactory = ReturnType<typeof SerializerSelector>;

/**
 * Route schemas compiled at a route's first request instead of before the service listens (issue 13:
 * compiling ~40 routes' validators and serializers took about 1.5 s of a start's CPU, before the
 * first lookup could be answered). `compileAll` compiles whatever is still pending, so a schema
 * error still shows: the service calls it once it listens, in the background, and the tests call it.
 */
export class LazyRouteCompilers {
  private readonly pending = new Set<() => unknown>();
  /** Every route part a validator was made for (for the meta-schema check in the tests). */
  readonly validated: Parameters<ReturnType<ValidatorFactory>>[0][] = [];

  readonly validatorFactory = ((externalSchemas, options) => {
    const build = routeSchemas.validatorFactory(externalSchemas, options);
    return (route) => {
      this.validated.push(route);
      const compiled = this.lazily(() => build(route) as Validate);
      const validate: Validate = (data) => {
        const v = compiled();
        const ok = v(data);
        validate.errors = v.errors;
        return ok;
      };
      return validate;
    };
  }) as ValidatorFactory;

  readonly serializerFactory = ((externalSchemas, options) => {
    const build = SerializerSelector()(externalSchemas, options);
    return (route) => {
      const compiled = this.lazily(() => build(route) as Serialize);
      return (data: unknown) => compiled()(data);
    };
  }) as SerializerFactory;

  /** `build` run at the first call (and kept), pending until then. */
  private lazily<F>(build: () => F): () => F {
    let made: F | undefined;
    const compile = (): F => {
      if (made === undefined) {
        made = build();
        this.pending.delete(compile);
      }
      return made;
    };
    this.pending.add(compile);
    return compile;
  }

  /** Schemas not compiled yet. */
  get waiting(): number {
    return this.pending.size;
  }

  /** Compiles every schema not compiled yet (throws the first schema error). */
  compileAll(): void {
    for (const compile of [...this.pending]) compile();
  }

  /** Compiles the pending schemas one per macrotask, so requests interleave; errors go to `onError`. */
  compileInBackground(onError: (e: unknown) => void): void {
    const next = () => {
      const compile = this.pending.values().next().value;
      if (!compile) return;
      try {
        compile();
      } catch (e) {
        onError(e);
        this.pending.delete(compile);
      }
      setImmediate(next).unref();
    };
    setImmediate(next).unref();
  }
}
