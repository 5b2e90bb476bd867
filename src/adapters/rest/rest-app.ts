import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { Static } from "typebox";
import { AmbiguousIdentifier, IdentityMapError, InvalidArgument, NotFound, ShuttingDown } from "../../domain/errors.js";
import type { IdentityKind } from "../../domain/identity-kind.js";
import { queryKeys } from "../../domain/lookup-query.js";
import type { IdentityMapApi, LookupRequest, Principal } from "../../ports/identity-service.js";
import { withDeadline } from "../deadline.js";
import { registerChangeRoutes } from "./change-routes.js";
import { describeError } from "../error-status.js";
import { assertSafeJson, parseJsonBody } from "./json-guard.js";
import { registerConsole } from "./console-routes.js";
import { asOfJson, registerOperatorRoutes } from "./operator-routes.js";
import { LookupOrAsOfReply, OPERATOR_SCHEMAS } from "./operator-schemas.js";
import { deviceJson, deviceListJson, historyJson, lookupJson } from "./rest-messages.js";
import { described, documented, LazyRouteCompilers, ref } from "./openapi.js";
import {
  BatchLookupBody,
  BatchLookupReply,
  DeviceListQuery,
  DeviceListReply,
  DeviceParams,
  DeviceReply,
  HealthReply,
  HistoryQuery,
  HistoryReply,
  LookupBody,
  LookupQuery,
  ErrorSchema,
  LookupReply,
  PublishBody,
  QuarantinedReply,
  ReleasedReply,
  ResolveBody,
  PublishReply,
  ReadyReply,
  ResolveReply,
} from "./schemas.js";

export interface RestOptions {
  /** Who is calling and what they may do; the default lets everyone write (no auth configured). */
  readonly authorize?: (req: FastifyRequest, need: "reader" | "writer") => Principal;
  /** Serve HTTPS with this certificate chain and key (PEM). */
  readonly https?: { readonly cert: Buffer; readonly key: Buffer };
}

/** Who calls when no auth is configured: everyone may publish (the server then listens on loopback). */
const ANONYMOUS_WRITER: Principal = { actor: "anonymous", role: "writer" };

/**
 * The REST front-end, built without listening so tests use inject(). Handlers decode, call the
 * service, encode; errors go through the one status table (error-status.ts).
 */
export async function buildRestApp(app: IdentityMapApi, options: RestOptions = {}): Promise<FastifyInstance> {
  const { config } = app;
  const compilers = new LazyRouteCompilers();
  const f = Fastify({
    ...(options.https ? { https: { cert: options.https.cert, key: options.https.key } } : {}),
    logger: false,
    bodyLimit: config.bodyLimitBytes,
    // The whole request, headers and body, must arrive within the request timeout: a client that
    // trickles its body no longer holds a socket for minutes (defect 8 of issue 12). Node checks
    // these every connectionsCheckingInterval (30 s by default: far too coarse for a 10 s limit).
    requestTimeout: config.requestTimeoutMs,
    http: {
      headersTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1_000, config.requestTimeoutMs),
    },
    // Refused during shutdown with our error envelope (the onRequest hook below), not fastify's body.
    return503OnClosing: false,
    schemaController: {
      compilersFactory: { buildValidator: compilers.validatorFactory, buildSerializer: compilers.serializerFactory },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // Schemas compile at first use; the rest once the server is ready, in the background (issue 13).
  f.decorate("routeCompilers", compilers);
  f.addHook("onReady", async () => {
    compilers.compileInBackground((e) => app.log.error({ err: String(e) }, "a route schema does not compile"));
  });
  const authorize = options.authorize ?? (() => ANONYMOUS_WRITER);
  // The API speaks JSON only: any other body is a 415, not a string that fails validation as a 400.
  f.removeContentTypeParser("text/plain");

  await f.register(swagger, documented.swaggerOptions);
  await f.register(swaggerUi, { routePrefix: "/docs" });
  for (const schema of [...documented.schemas, ...OPERATOR_SCHEMAS]) f.addSchema(schema);

  f.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      const v = err.validation[0];
      const path = (v?.instancePath ?? "")
        .replace(/^\//, "")
        .replace(/\/(\d+)(?=\/|$)/g, "[$1]")
        .replace(/\//g, ".");
      const field = [err.validationContext, path].filter(Boolean).join(".") || "body";
      const missing = (v?.params as { missingProperty?: string } | undefined)?.missingProperty;
      const named = missing ? `${field}.${missing}` : field;
      return reply
        .status(400)
        .send({ error: { code: "invalid_argument", message: `${named}: ${v?.message ?? "invalid"}`, field: named } });
    }
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return reply.status(413).send({
        error: {
          code: "batch_too_large",
          message: `body: larger than the limit of ${config.bodyLimitBytes} bytes`,
          field: "body",
        },
      });
    }
    if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
      return reply.status(415).send({
        error: { code: "unsupported_media_type", message: "body: send application/json", field: "content-type" },
      });
    }
    // Fastify's own refusals of the request itself (an unsupported media type, an upload the client
    // aborted, a body shorter than its length): the client's doing, so no error log and no 500.
    if (!(err instanceof IdentityMapError) && err.statusCode !== undefined && err.statusCode < 500) {
      return reply
        .status(err.statusCode)
        .send({ error: { code: "invalid_argument", message: `body: ${err.message}`, field: "body" } });
    }
    const { status, body } = describeError(err);
    // RFC 6750: a 401 names the scheme the caller should use.
    if (status.http === 401) reply.header("www-authenticate", 'Bearer realm="identity-map"');
    if (status.http >= 500)
      app.log.error(
        { err: String(err), cause: String((err as { cause?: unknown }).cause ?? ""), url: req.url },
        "request failed",
      );
    return reply.status(status.http).send(body);
  });

  let closing = false;
  f.addHook("preClose", async () => {
    closing = true;
  });

  // Credentials are checked before the body is parsed: a caller without them learns nothing from validation.
  // Hooks in callback form: an async hook costs a promise per request, and these sit on every lookup.
  f.addHook("onRequest", (req, reply, done) => {
    if (closing) {
      reply.header("connection", "close");
      done(new ShuttingDown("the service is shutting down; retry on another instance"));
      return;
    }
    try {
      if (req.url.startsWith("/v1/")) authorize(req, "reader");
    } catch (e) {
      done(e as Error);
      return;
    }
    done();
  });

  f.removeContentTypeParser("application/json");
  f.addContentTypeParser("application/json", { parseAs: "string" }, (_req, text, done) => {
    try {
      done(null, parseJsonBody(text as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });

  // The body is checked as it is parsed; query strings and path parameters are checked here.
  f.addHook("preHandler", (req, _reply, done) => {
    try {
      assertSafeJson(req.query, "query");
      assertSafeJson(req.params, "params");
    } catch (e) {
      done(e as Error);
      return;
    }
    done();
  });

  f.setNotFoundHandler(async (req) => {
    throw new NotFound(`no route ${req.method} ${req.url.split("?")[0]}`);
  });

  const { errors, notFound, op } = documented;
  const deadline = <T>(p: Promise<T>): Promise<T> => withDeadline(p, config.requestTimeoutMs);

  f.post(
    "/v1/device-updates",
    {
      schema: {
        ...op("publishDeviceUpdates", "writer"),
        summary: "Publish a batch of device updates",
        body: ref(PublishBody),
        response: { 200: described("One result per update, in request order", PublishReply), ...errors },
      },
    },
    async (req) => {
      const { actor } = authorize(req, "writer");
      return {
        results: (await deadline(app.publish.publish(req.body.updates, actor))) as Static<
          typeof PublishReply
        >["results"],
      };
    },
  );

  f.post(
    "/v1/device-updates/resolve",
    {
      schema: {
        ...op("resolveDeviceUpdates", "reader"),
        summary: "Resolve updates to canonical ids without writing; with explain, each decision's trace",
        body: ref(ResolveBody),
        response: { 200: described("One resolution per update, in request order", ResolveReply), ...errors },
      },
    },
    async (req) => {
      authorize(req, "reader");
      return {
        results: (await deadline(
          app.publish.resolve(req.body.updates, { explain: req.body.explain === true }),
        )) as Static<typeof ResolveReply>["results"],
      };
    },
  );

  f.post(
    "/v1/canonical-devices/lookup",
    {
      schema: {
        ...op("lookupCanonicalDevice", "reader"),
        summary: "Look up a canonical device by identity keys",
        body: ref(LookupBody),
        response: { 200: described("The lookup result; a miss is found: false", LookupReply), ...errors },
      },
    },
    async (req) => {
      const { role } = authorize(req, "reader");
      const b = req.body;
      return lookupJson(
        await deadline(
          app.lookup.lookup({
            identityKeys: b.identity_keys,
            ...opt("ipHint", b.ip_hint),
            ...opt("namespace", b.namespace),
            mayWrite: role === "writer",
          }),
        ),
      );
    },
  );

  f.get(
    "/v1/canonical-devices/lookup",
    {
      schema: {
        ...op("lookupCanonicalDeviceByQuery", "reader"),
        summary: "Look up by query parameters, strongest first; 404 on a miss",
        querystring: LookupQuery,
        response: {
          200: described(
            "The device that holds the strongest given identifier; with `at`, the one that held it then (AsOfResult)",
            LookupOrAsOfReply,
          ),
          409: described("ambiguous_identifier: a quarantined (shared) identifier; candidates named", ErrorSchema),
          ...notFound,
        },
      },
    },
    async (req) => {
      const { role } = authorize(req, "reader");
      const identityKeys = queryKeys({
        mac: req.query.mac,
        ip: req.query.ip,
        partition: req.query.partition,
        armisId: req.query.armis_id,
        netboxId: req.query.netbox_id,
        deviceId: req.query.device_id,
      });
      // As of a time (ADR 0016): who held the identifier then, from the audit trail.
      if (req.query.at !== undefined) {
        const at = Date.parse(req.query.at);
        if (Number.isNaN(at)) throw new InvalidArgument("at", "must be RFC 3339, e.g. 2026-12-03T14:05:00Z");
        const past = await deadline(app.lookup.asOf(identityKeys, at));
        if (!past.found) throw new NotFound("no device held the given identities at that time");
        return asOfJson({ ...past, found: true });
      }
      const r = await deadline(app.lookup.lookup({ identityKeys, mayWrite: role === "writer" }));
      if (r.ambiguous) throw new AmbiguousIdentifier(queryField(r.ambiguous.key.kind), r.ambiguous.candidates);
      if (!r.found) throw new NotFound("no device matches the given identities");
      return lookupJson(r);
    },
  );

  f.post(
    "/v1/canonical-devices/batch-lookup",
    {
      schema: {
        ...op("batchLookupCanonicalDevices", "reader"),
        summary: "Many lookups, results in request order",
        body: ref(BatchLookupBody),
        response: { 200: described("One lookup result per lookup, in request order", BatchLookupReply), ...errors },
      },
    },
    async (req) => {
      const { role } = authorize(req, "reader");
      const { lookups, namespace } = req.body;
      const requests: LookupRequest[] = lookups.map((l) => ({
        identityKeys: l.identity_keys,
        ...opt("ipHint", l.ip_hint),
        ...opt("namespace", namespace),
        mayWrite: role === "writer",
      }));
      const results = await deadline(app.lookup.lookupMany(requests));
      return { results: results.map(lookupJson) };
    },
  );

  f.get(
    "/v1/identifiers/quarantined",
    {
      schema: {
        ...op("listQuarantinedIdentifiers", "reader"),
        summary: "Identifiers quarantined as shared (docks, dongles, cloned VMs): they link and merge nothing",
        response: { 200: described("The quarantined identifiers with their candidates", QuarantinedReply), ...errors },
      },
    },
    async (req) => {
      authorize(req, "reader");
      const list = await deadline(app.quarantine.list());
      return {
        identifiers: list.map((q) => ({
          kind: q.key.kind,
          value: q.key.value,
          quarantined_since_unix_millis: q.quarantinedSinceMs,
          candidates: [...q.candidates],
        })),
      };
    },
  );

  f.delete(
    "/v1/identifiers/quarantined/:kind/:value",
    {
      schema: {
        ...op("releaseQuarantinedIdentifier", "writer"),
        summary: "Release a quarantined identifier (writer): the next report binds it afresh; audited as released",
        params: {
          type: "object",
          properties: {
            kind: { type: "string", description: "The identifier's kind: mac" },
            value: { type: "string", description: "The identifier, e.g. AA:BB:CC:DD:EE:FF" },
          },
          required: ["kind", "value"],
        },
        response: {
          200: described("Released: the next report binds it afresh", ReleasedReply),
          404: described("The identifier is not quarantined", ErrorSchema),
          ...errors,
        },
      },
    },
    async (req) => {
      const { actor } = authorize(req, "writer");
      const { kind, value } = req.params as { kind: string; value: string };
      await deadline(app.quarantine.release(kind, value, actor));
      return { released: true };
    },
  );

  f.get(
    "/v1/canonical-devices",
    {
      schema: {
        ...op("listCanonicalDevices", "reader"),
        summary: "Canonical devices with their keys, filtered, in device-id order, paged with `next_cursor`",
        querystring: DeviceListQuery,
        response: { 200: described("A page of devices", DeviceListReply), ...errors },
      },
    },
    async (req) => {
      authorize(req, "reader");
      const q = req.query;
      const since = q.updated_since === undefined ? undefined : Date.parse(q.updated_since);
      if (since !== undefined && Number.isNaN(since)) throw new InvalidArgument("updated_since", "must be RFC 3339");
      const page = await deadline(
        app.listDevices({
          filter: {
            ...opt("partition", q.partition),
            ...opt("source", q.source),
            ...opt("hostname", q.hostname),
            ...(since !== undefined ? { updatedSinceMs: since } : {}),
            ...(q.provisional !== undefined ? { provisional: q.provisional } : {}),
          },
          ...opt("cursor", q.cursor),
          ...(q.limit !== undefined ? { limit: q.limit } : {}),
        }),
      );
      return deviceListJson(page);
    },
  );

  f.get(
    "/v1/canonical-devices/:device_id",
    {
      schema: {
        ...op("getCanonicalDevice", "reader"),
        summary: "A device: its record, every key bound to it, and where it redirects after a merge",
        params: DeviceParams,
        response: { 200: described("The device, its keys and its redirect", DeviceReply), ...notFound },
      },
    },
    async (req) => {
      authorize(req, "reader");
      const { device_id } = req.params;
      const d = await deadline(app.lookup.device(device_id));
      return deviceJson(d);
    },
  );

  f.get(
    "/v1/canonical-devices/:device_id/history",
    {
      schema: {
        ...op("getCanonicalDeviceHistory", "reader"),
        summary: "The audit trail of a device's bindings, newest first, paged with `next`",
        params: DeviceParams,
        querystring: HistoryQuery,
        response: { 200: described("A page of binding changes, newest first", HistoryReply), ...notFound },
      },
    },
    async (req) => {
      authorize(req, "reader");
      const { device_id } = req.params;
      const { limit, before } = req.query;
      const page = await deadline(
        app.history({
          deviceId: device_id,
          ...(limit !== undefined ? { limit } : {}),
          ...(before !== undefined ? { before } : {}),
        }),
      );
      return historyJson(device_id, page);
    },
  );

  registerOperatorRoutes(f, app, authorize, deadline);
  await registerConsole(f);

  f.get("/healthz", { schema: { hide: true, response: { 200: HealthReply } } }, async () => ({
    status: "ok" as const,
  }));

  // Probes for an orchestrator, not part of the client contract: kept out of the document like /metrics.
  const readiness = { hide: true, response: { 200: ReadyReply, 503: ReadyReply } };
  f.get("/readyz", { schema: readiness }, async (_req, reply) => {
    const r = await app.ready();
    const ok = r.kv && r.db;
    return reply.status(ok ? 200 : 503).send({
      status: ok ? "ready" : "unavailable",
      kv: r.kv ? "ok" : "unavailable",
      db: r.db ? "ok" : "unavailable",
      mode: config.mode as "off" | "shadow" | "on",
    });
  });

  f.get("/metrics", { schema: { hide: true } }, async (_req, reply) => {
    reply.header("content-type", app.metrics.registry.contentType);
    return app.metrics.registry.metrics();
  });

  f.get("/openapi.json", { schema: { hide: true } }, async () => f.swagger());

  // The change stream (issue 15): its own file, so the routes above stay as they were.
  registerChangeRoutes(f as unknown as FastifyInstance, app, authorize);

  return f;
}

function opt<K extends string>(k: K, v: string | undefined): { [P in K]?: string } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: string };
}

/** The GET parameter a key kind came from, to name it in an error. */
function queryField(kind: IdentityKind): string {
  return kind === "partition-ip" ? "ip" : kind.replace("-", "_");
}
