import type * as grpc from "@grpc/grpc-js";
import { InvalidArgument } from "../../domain/errors.js";
import { kindFromWire } from "../../domain/identity-kind.js";
import type { IdentityMapApi, Principal, Role } from "../../ports/identity-service.js";
import { wireKey } from "./grpc-messages.js";

type WireKey = { kind: number; value: string };
type Unary = <Req, Res>(
  need: Role,
  handle: (req: Req, who: Principal) => Promise<Res>,
) => grpc.handleUnaryCall<Req, Res>;

/** A wire key as the services take it; an unknown kind is refused naming the field. */
function key(k: WireKey | null | undefined, field: string): { kind: string; value: string } {
  const kind = kindFromWire(k?.kind ?? 0);
  if (!kind) throw new InvalidArgument(`${field}.kind`, "give an identity kind (not UNSPECIFIED)");
  return { kind, value: k?.value ?? "" };
}

/**
 * The operator's RPCs of identitymap.v1.IdentityMapService (ADR 0016): the same services as the REST
 * routes, audited with the caller's actor name.
 */
export function operatorHandlers(app: IdentityMapApi, unary: Unary) {
  return {
    MergeCanonicalDevice: unary<{ device_id: string; into: string }, unknown>("writer", async (req, who) => {
      const r = await app.operator.merge(req.device_id, req.into, who.actor);
      return { device_id: r.deviceId, moved_keys: r.moved.map(wireKey) };
    }),
    SplitCanonicalDevice: unary<{ device_id: string; keys: WireKey[] }, unknown>("writer", async (req, who) => {
      const keys = req.keys.map((k, i) => key(k, `keys[${i}]`));
      const r = await app.operator.split(req.device_id, keys, who.actor);
      return { device_id: r.deviceId, moved_keys: r.moved.map(wireKey) };
    }),
    PinIdentityKey: unary<{ device_id: string; key: WireKey | null }, unknown>("writer", async (req, who) => {
      await app.operator.pin(req.device_id, key(req.key, "key"), who.actor);
      return { pinned: true };
    }),
    UnpinIdentityKey: unary<{ device_id: string; key: WireKey | null }, unknown>("writer", async (req, who) => {
      await app.operator.unpin(req.device_id, key(req.key, "key"), who.actor);
      return { pinned: false };
    }),
    GetCanonicalDeviceAsOf: unary<{ identity_keys: WireKey[]; at_unix_millis: number }, unknown>(
      "reader",
      async (req) => {
        if (!(req.at_unix_millis > 0)) throw new InvalidArgument("at_unix_millis", "give the time to ask about");
        const keys = req.identity_keys.map((k, i) => key(k, `identity_keys[${i}]`));
        const r = await app.lookup.asOf(keys, req.at_unix_millis);
        if (!r.found) return { found: false };
        return {
          found: true,
          device_id: r.deviceId,
          matched_key: wireKey(r.matchedKey!),
          since_unix_millis: r.sinceMs,
          until_unix_millis: r.untilMs ?? 0,
          reason: r.reason,
          actor: r.actor,
        };
      },
    ),
  };
}
