import type { Binding } from "../binding.js";
import { partitionIp } from "../device-update.js";
import { shortHash } from "../metadata-hash.js";
import { conflictingKinds, identityOf, sharesStrongIdentifier, type Identity } from "../record.js";
import type { Candidate } from "./choose-device.js";
import { deviceKey, type Reader } from "./reader.js";
import type { UpdateContext } from "./update-context.js";

export interface ClaimedId {
  readonly canonical: string;
  /** The binding of the canonical id as loaded (possibly expired), null when absent. */
  readonly deviceBinding: Binding | null;
  /** The chosen device; set here too when a concurrent writer created this device a moment ago. */
  readonly chosen: Candidate | undefined;
  /** How a device nothing bound was named. */
  readonly rule?: "joined_concurrent_create" | "new_device" | "derived_id";
}

/** The chosen device's id, or a free id for a new device (ids are permanent: never reused). */
export function claimId(c: UpdateContext, reader: Reader, chosen: Candidate | undefined): ClaimedId {
  if (chosen) {
    const deviceBinding = reader.get(deviceKey(chosen.deviceId)) ?? null;
    reader.checkpoint();
    return { canonical: chosen.deviceId, deviceBinding, chosen };
  }
  const natural = naturalId(c);
  const seed = `${c.ranked[0]!.kind}:${c.ranked[0]!.value}`;
  let canonical = natural;
  let deviceBinding = reader.get(deviceKey(natural)) ?? null;
  reader.checkpoint();
  // A taken id gets a deterministic derived id, so two replicas choose the same one. A taken id whose
  // device carries this update's strong identity is this device, created a moment ago by a concurrent
  // writer whose keys are not bound yet: join it rather than fork a second one.
  for (const candidate of derivedIds(natural, seed)) {
    const taken = c.live(deviceBinding);
    if (!taken) break;
    if (c.strong && sameDevice(identityOf(taken.record), c.identity)) {
      const joined = { deviceId: taken.record.canonicalDeviceId, kind: "device-id" as const, binding: taken };
      deviceBinding = reader.get(deviceKey(joined.deviceId)) ?? null;
      reader.checkpoint();
      return { canonical: joined.deviceId, deviceBinding, chosen: joined, rule: "joined_concurrent_create" };
    }
    if (candidate === undefined) throw new Error(`no free derived id for ${natural}`);
    canonical = candidate;
    deviceBinding = reader.get(deviceKey(canonical)) ?? null;
    reader.checkpoint();
  }
  return { canonical, deviceBinding, chosen: undefined, rule: canonical === natural ? "new_device" : "derived_id" };
}

/**
 * Derived ids to try after the natural one, in a fixed order so two replicas choose the same one:
 * longer hashes of the strongest key, then numbered ones. An address can name many devices over
 * time (each absorbed sweep-born device leaves a permanent redirect), so a few are not enough.
 * Ends with undefined: none free.
 */
function* derivedIds(natural: string, seed: string): Generator<string | undefined> {
  for (const len of [8, 16, 32, 64]) yield `${natural}~${shortHash(seed, len)}`;
  for (let n = 1; n <= MAX_NUMBERED_DERIVED_IDS; n++) yield `${natural}~${shortHash(`${seed}#${n}`, 8)}`;
  yield undefined;
}

const MAX_NUMBERED_DERIVED_IDS = 1024;

/** The id a new device takes: the update's id, else its address, else its strongest key. */
function naturalId({ u, ranked }: UpdateContext): string {
  if (u.deviceId !== "") return u.deviceId;
  if (u.ip !== "") return partitionIp(u.partition, u.ip);
  return `${ranked[0]!.kind}:${ranked[0]!.value}`;
}

/** Two identities that share a strong identifier and contradict each other in none but MACs. */
function sameDevice(a: Identity, b: Identity): boolean {
  return sharesStrongIdentifier(a, b) && conflictingKinds(a, b).every((x) => x === "mac");
}
