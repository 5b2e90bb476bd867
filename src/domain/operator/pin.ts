import { InvalidArgument, NotFound } from "../errors.js";
import type { IdentityKey } from "../identity-key.js";
import { boundTo, updateOf, type LoadedBindings, type OperatorContext, type OperatorPlan } from "./device-state.js";

/**
 * Pins a key where it stands (ADR 0016): sightings no longer move it (a weaker one is refused as
 * always, a stronger one becomes a `pinned` conflict for the operator). Pinning a device's own id
 * keeps the device apart: no sighting merges or absorbs it. Idempotent: a pinned key stays pinned
 * by whoever pinned it first. InvalidArgument naming `key` when the key is not bound to the device.
 */
export function planPin(
  deviceId: string,
  key: IdentityKey,
  loaded: LoadedBindings,
  ctx: OperatorContext,
): OperatorPlan {
  const b = boundTo(key, deviceId, loaded, ctx.nowMs);
  if (!b) throw new InvalidArgument("key", `${key.kind} ${key.value} is not bound to ${deviceId}`);
  if (b.record.pin) return { writes: [], changes: [] };
  return {
    writes: [
      updateOf(key, b, { ...b.record, operationId: ctx.operationId, pin: { atMs: ctx.nowMs, actor: ctx.actor } }),
    ],
    changes: [{ key, fromDeviceId: deviceId, toDeviceId: deviceId, reason: "pinned" }],
  };
}

/** Lifts a pin: the resolution rules apply to the key again. NotFound when the key is not pinned to the device. */
export function planUnpin(
  deviceId: string,
  key: IdentityKey,
  loaded: LoadedBindings,
  ctx: OperatorContext,
): OperatorPlan {
  const b = boundTo(key, deviceId, loaded, ctx.nowMs);
  if (!b?.record.pin) throw new NotFound(`${key.kind} ${key.value} is not pinned to ${deviceId}`);
  const { pin: _, ...rest } = b.record;
  return {
    writes: [updateOf(key, b, { ...rest, operationId: ctx.operationId })],
    changes: [{ key, fromDeviceId: deviceId, toDeviceId: deviceId, reason: "unpinned" }],
  };
}
