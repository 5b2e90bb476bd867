import type { FastifyInstance, FastifyRequest } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { AsOfResult, DeviceDetail, IdentityMapApi, Principal } from "../../ports/identity-service.js";
import { described, documented, ref } from "./openapi.js";
import {
  DeviceDetailReply,
  MergeBody,
  OperatorReply,
  PinConflictsQuery,
  PinConflictsReply,
  PinParams,
  PinReply,
  SessionReply,
  SplitBody,
} from "./operator-schemas.js";
import { historyJson, keyJson, recordJson } from "./rest-messages.js";
import type { Static } from "typebox";
import { DeviceParams, ErrorSchema, type ResolveResultSchema } from "./schemas.js";

type App = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>;
type Authorize = (req: FastifyRequest, need: "reader" | "writer") => Principal;

/** The operator's routes (ADR 0016): merge, split, pins, pin conflicts and the console's device page. */
export function registerOperatorRoutes(
  f: App,
  app: IdentityMapApi,
  authorize: Authorize,
  deadline: <T>(p: Promise<T>) => Promise<T>,
): void {
  const { op, notFound } = documented;
  const devicesNotFound = {
    ...notFound,
    404: described("No such device", ErrorSchema),
  };

  f.get(
    "/v1/session",
    {
      schema: {
        ...op("getSession", "reader"),
        summary: "Who the caller is: the actor name the audit trail records and the role (the console shows it)",
        response: { 200: described("The caller", SessionReply), ...documented.errors },
      },
    },
    async (req) => {
      const p = authorize(req, "reader");
      return { actor: p.actor, role: p.role, auth: p.actor !== "anonymous" };
    },
  );

  f.post(
    "/v1/canonical-devices/:device_id/merge",
    {
      schema: {
        ...op("mergeCanonicalDevice", "writer"),
        summary: "Merge this device into another (writer): its keys move there, pinned; its id redirects there",
        params: DeviceParams,
        body: ref(MergeBody),
        response: { 200: described("The merged device and the keys that moved", OperatorReply), ...devicesNotFound },
      },
    },
    async (req) => {
      const { actor } = authorize(req, "writer");
      const { device_id } = req.params as { device_id: string };
      const r = await deadline(app.operator.merge(device_id, (req.body as { into: string }).into, actor));
      return { device_id: r.deviceId, moved_keys: r.moved.map(keyJson) };
    },
  );

  f.post(
    "/v1/canonical-devices/:device_id/split",
    {
      schema: {
        ...op("splitCanonicalDevice", "writer"),
        summary: "Split keys off this device (writer): they become a new device, pinned there",
        params: DeviceParams,
        body: ref(SplitBody),
        response: { 200: described("The new device and the keys that moved", OperatorReply), ...devicesNotFound },
      },
    },
    async (req) => {
      const { actor } = authorize(req, "writer");
      const { device_id } = req.params as { device_id: string };
      const r = await deadline(
        app.operator.split(device_id, (req.body as { keys: { kind: string; value: string }[] }).keys, actor),
      );
      return { device_id: r.deviceId, moved_keys: r.moved.map(keyJson) };
    },
  );

  f.put(
    "/v1/canonical-devices/:device_id/pins/:kind/:value",
    {
      schema: {
        ...op("pinIdentityKey", "writer"),
        summary: "Pin a key where it stands (writer): sightings no longer move it; a stronger one is a pin conflict",
        params: PinParams,
        response: { 200: described("Pinned (idempotent)", PinReply), ...devicesNotFound },
      },
    },
    async (req) => {
      const { actor } = authorize(req, "writer");
      const { device_id, kind, value } = req.params as { device_id: string; kind: string; value: string };
      await deadline(app.operator.pin(device_id, { kind, value }, actor));
      return { pinned: true };
    },
  );

  f.delete(
    "/v1/canonical-devices/:device_id/pins/:kind/:value",
    {
      schema: {
        ...op("unpinIdentityKey", "writer"),
        summary: "Lift a pin (writer): the resolution rules apply to the key again",
        params: PinParams,
        response: {
          200: described("Unpinned", PinReply),
          ...devicesNotFound,
          404: described("The key is not pinned to the device", ErrorSchema),
        },
      },
    },
    async (req) => {
      const { actor } = authorize(req, "writer");
      const { device_id, kind, value } = req.params as { device_id: string; kind: string; value: string };
      await deadline(app.operator.unpin(device_id, { kind, value }, actor));
      return { pinned: false };
    },
  );

  f.get(
    "/v1/pins/conflicts",
    {
      schema: {
        ...op("listPinConflicts", "reader"),
        summary:
          "Sightings a pin refused, newest first: the conflicts an operator settles (unpin, or correct the source)",
        querystring: PinConflictsQuery,
        response: { 200: described("The refused sightings", PinConflictsReply), ...documented.errors },
      },
    },
    async (req) => {
      authorize(req, "reader");
      const { limit } = req.query as { limit?: number };
      const entries = await deadline(app.operator.pinConflicts(limit ?? 100));
      return { conflicts: historyJson("", { entries }).entries };
    },
  );

  f.get(
    "/v1/canonical-devices/:device_id/detail",
    {
      schema: {
        ...op("getCanonicalDeviceDetail", "reader"),
        summary: "A device as an operator investigates it: keys with pins, redirects, latest sighting, its explanation",
        params: DeviceParams,
        response: { 200: described("The device page's data", DeviceDetailReply), ...devicesNotFound },
      },
    },
    async (req) => {
      authorize(req, "reader");
      const { device_id } = req.params as { device_id: string };
      return detailJson(await deadline(app.operator.detail(device_id)));
    },
  );
}

export function detailJson(d: DeviceDetail) {
  const v = d.view;
  return {
    device_id: v.deviceId,
    ...(v.redirectedTo ? { redirected_to: v.redirectedTo } : {}),
    record: recordJson(v.record),
    revision: v.revision,
    keys: d.keys.map((k) => ({
      ...keyJson(k.key),
      ...(k.pin ? { pinned: { at_unix_millis: k.pin.atMs, actor: k.pin.actor } } : {}),
    })),
    redirects_in: [...d.redirectsIn],
    provisional: d.provisional,
    ...(d.latest
      ? {
          latest_sighting: {
            ip: d.latest.ip,
            partition: d.latest.partition,
            hostname: d.latest.hostname,
            source: d.latest.source,
            last_seen_unix_millis: d.latest.lastSeenMs,
          },
        }
      : {}),
    // The port's readonly arrays, as the schema's (mutable) JSON shape.
    ...(d.explanation ? { explanation: d.explanation as Static<typeof ResolveResultSchema> } : {}),
  };
}

export function asOfJson(r: AsOfResult & { found: true }) {
  return {
    found: true,
    at: new Date(r.atMs).toISOString(),
    device_id: r.deviceId!,
    matched_key: keyJson(r.matchedKey!),
    since_unix_millis: r.sinceMs!,
    ...(r.untilMs !== undefined ? { until_unix_millis: r.untilMs } : {}),
    reason: r.reason!,
    actor: r.actor!,
  };
}
