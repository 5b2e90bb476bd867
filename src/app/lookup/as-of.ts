import type { DeviceStore } from "../../ports/device-store.js";
import type { AsOfResult } from "../../ports/identity-service.js";
import type { IdentityKey } from "../../domain/identity-key.js";

/**
 * Who held an identifier at a time (ADR 0016), answered from the audit trail: for each key in the
 * order given (the GET form orders them strongest first), the last change at or before `atMs`; the
 * first key someone held then answers. A change that left the key unbound (deleted, expired,
 * quarantined) means nobody held it, so the next key is asked.
 */
export async function lookupAsOf(
  devices: DeviceStore,
  keys: readonly IdentityKey[],
  atMs: number,
): Promise<AsOfResult> {
  for (const key of keys) {
    const { before, after } = await devices.keyAsOf(key, atMs);
    if (!before?.toDeviceId) continue;
    return {
      found: true,
      atMs,
      matchedKey: key,
      deviceId: before.toDeviceId,
      sinceMs: before.atMs,
      ...(after ? { untilMs: after.atMs } : {}),
      reason: before.reason,
      actor: before.actor,
    };
  }
  return { found: false, atMs };
}
