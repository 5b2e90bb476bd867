import type { CanonicalRecord } from "../record.js";
import type { Candidate } from "./choose-device.js";
import type { UpdateContext } from "./update-context.js";

/**
 * When the device became provisional (0: it is not). A device is provisional while every sighting
 * carried only addresses; the first asserting update (strong identifier or stable id) ends it for
 * good: that is the take-over. A device recorded before the flag existed counts as not provisional.
 */
export function provisionalSince(
  c: UpdateContext,
  deviceRecord: CanonicalRecord | undefined,
  chosen: Candidate | undefined,
): number {
  if (c.asserting) return 0;
  if (deviceRecord) return deviceRecord.provisionalSinceMs ?? 0;
  if (chosen) return chosen.binding.record.provisionalSinceMs ?? 0;
  return c.t;
}
