import { isLive } from "../binding.js";
import type { NormalizedUpdate } from "../device-update.js";
import { keyId, type IdentityKey } from "../identity-key.js";
import { isQuarantined } from "../shared-identifier.js";
import type { Reader } from "./reader.js";

/**
 * The update without its quarantined MACs (ADR 0010: a shared MAC no longer links or merges
 * anything), and those MACs for the trace. Reads the update's own keys: the first phase needs them anyway.
 */
export function ignoringQuarantined(
  u: NormalizedUpdate,
  reader: Reader,
): { update: NormalizedUpdate; ignored: IdentityKey[] } {
  for (const k of u.keys) reader.get(k);
  reader.checkpoint();
  const ignored = u.keys.filter((k) => {
    if (k.kind !== "mac") return false;
    const b = reader.get(k);
    return isLive(b, u.timeMs) && isQuarantined(b.record);
  });
  if (ignored.length === 0) return { update: u, ignored };
  const out = new Set(ignored.map(keyId));
  return {
    update: {
      ...u,
      keys: u.keys.filter((k) => !out.has(keyId(k))),
      macs: u.macs.filter((m) => !out.has(keyId({ kind: "mac", value: m }))),
    },
    ignored,
  };
}
