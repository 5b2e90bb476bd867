import { InvalidArgument, NotFound } from "../../domain/errors.js";
import type { HistoryRequest } from "../../ports/identity-service.js";
import type { DeviceStore, HistoryPage } from "../../ports/index.js";

export const HISTORY_DEFAULT_LIMIT = 50;
export const HISTORY_MAX_LIMIT = 500;

export type { HistoryRequest };

/**
 * A device's binding changes, newest first, one page at a time (both front-ends). An id the store has
 * never seen is NotFound, so a typo is not mistaken for a device with no history.
 */
export async function deviceHistory(devices: DeviceStore, req: HistoryRequest): Promise<HistoryPage> {
  const deviceId = req.deviceId.trim();
  if (deviceId === "") throw new InvalidArgument("device_id", "must not be empty");
  const limit = req.limit ?? HISTORY_DEFAULT_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > HISTORY_MAX_LIMIT)
    throw new InvalidArgument("limit", `must be an integer from 1 to ${HISTORY_MAX_LIMIT}`);
  if (req.before !== undefined && (!Number.isSafeInteger(req.before) || req.before < 1))
    throw new InvalidArgument("before", "must be a cursor returned as `next`");
  const page = await devices.history(deviceId, { limit, ...(req.before !== undefined ? { before: req.before } : {}) });
  if (page.entries.length === 0 && req.before === undefined && !(await devices.getDevice(deviceId))) {
    throw new NotFound(`device ${JSON.stringify(deviceId)} is not known`);
  }
  return page;
}
