import { isLive, type Binding } from "../binding.js";
import type { NormalizedUpdate } from "../device-update.js";
import { partitionIp } from "../device-update.js";
import { keyId, prioritizeKeys, type IdentityKey } from "../identity-key.js";
import type { IdentityKind } from "../identity-kind.js";
import { hasStrongIdentity, type Identity } from "../record.js";
import { isAddressDerived } from "./address-names.js";
import type { ResolutionPolicy } from "./policy.js";

/** What every phase of one decision needs to know about the update, computed once. */
export interface UpdateContext {
  readonly u: NormalizedUpdate;
  readonly policy: ResolutionPolicy;
  readonly operationId: string;
  /** The observation's time. */
  readonly t: number;
  readonly identity: Identity;
  /** The update carries a strong identifier. */
  readonly strong: boolean;
  /** The update's keys, strongest first. */
  readonly ranked: readonly IdentityKey[];
  /** The strength of what the update asserts: its strongest key. */
  readonly assertion: IdentityKind;
  /** The update's id is a name that does not move with an address. */
  readonly stableId: boolean;
  /** The update names the device by more than the address itself, so it asserts where it is. */
  readonly asserting: boolean;
  /** Reported by an address authority (its addresses are static). */
  readonly isAuthority: boolean;
  /** The update's address keys, by key id. */
  readonly currentAddresses: ReadonlySet<string>;
  /** The binding, if it has not expired at the observation's time. */
  live(b: Binding | null | undefined): Binding | null;
}

export function updateContext(u: NormalizedUpdate, policy: ResolutionPolicy, operationId: string): UpdateContext {
  const t = u.timeMs;
  const identity: Identity = { armisId: u.armisId, netboxIds: u.netboxIds, macs: u.macs, hostname: u.hostname };
  const strong = hasStrongIdentity(identity);
  const ranked = prioritizeKeys(u.keys);
  const stableId = u.deviceId !== "" && !isAddressDerived(u.deviceId);
  return {
    u,
    policy,
    operationId,
    t,
    identity,
    strong,
    ranked,
    assertion: ranked[0]!.kind,
    stableId,
    asserting: strong || stableId,
    isAuthority: policy.addressAuthorities.has(u.source),
    currentAddresses: new Set([
      keyId({ kind: "ip", value: u.ip }),
      keyId({ kind: "partition-ip", value: partitionIp(u.partition, u.ip) }),
    ]),
    live: (b) => (isLive(b, t) ? b : null),
  };
}
