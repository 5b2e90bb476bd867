import { InvalidArgument } from "../../domain/errors.js";
import type { DeviceListPage, DeviceListRequest } from "../../ports/identity-service.js";
import type { DeviceStore } from "../../ports/index.js";

export const LIST_DEFAULT_LIMIT = 100;
export const LIST_MAX_LIMIT = 1000;

/**
 * One page of canonical devices in device-id order (both the REST listing and the CLI export). The
 * cursor is the last id of the page, opaque to callers (base64url) so the order can change without
 * breaking them; a page that comes back full may be followed by an empty one.
 */
export async function listDevices(devices: DeviceStore, req: DeviceListRequest): Promise<DeviceListPage> {
  const limit = req.limit ?? LIST_DEFAULT_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > LIST_MAX_LIMIT)
    throw new InvalidArgument("limit", `must be an integer from 1 to ${LIST_MAX_LIMIT}`);
  const after = req.cursor === undefined ? undefined : decodeCursor(req.cursor);
  const page = await devices.listCanonicalDevices(req.filter, {
    limit: limit + 1,
    ...(after !== undefined ? { afterDeviceId: after } : {}),
  });
  const shown = page.slice(0, limit);
  return page.length > limit
    ? { devices: shown, nextCursor: Buffer.from(shown[shown.length - 1]!.deviceId).toString("base64url") }
    : { devices: shown };
}

function decodeCursor(cursor: string): string {
  const id = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, "base64url").toString() : "";
  if (id === "") throw new InvalidArgument("cursor", "must be a `next_cursor` returned by a previous page");
  return id;
}
