import type { Binding } from "../binding.js";
import type { IdentityKey } from "../identity-key.js";
import { isAddressKind, isStrongKind, kindRank, type IdentityKind } from "../identity-kind.js";
import { conflictingKinds, identityOf, type Identity } from "../record.js";
import { addressKeyOfId } from "./address-names.js";
import { deviceKey, type Reader } from "./reader.js";
import type { TraceCandidate } from "./trace.js";
import type { UpdateContext } from "./update-context.js";

/** The device an existing binding names, and the key that named it. */
export interface Candidate {
  readonly deviceId: string;
  readonly kind: IdentityKind;
  readonly binding: Binding;
}

export interface DeviceChoice {
  readonly chosen: Candidate | undefined;
  readonly candidates: readonly TraceCandidate[];
  /** Devices refused because a stronger identity differs: never merged into, by any key. */
  readonly vetoed: ReadonlySet<string>;
  readonly vetoes: number;
  readonly staleLinks: number;
}

/** Chooses the device: the strongest bound key whose device is not vetoed (ADR 0010). */
export function chooseDevice(c: UpdateContext, reader: Reader): DeviceChoice {
  const { u, t, policy } = c;
  for (const k of u.keys) reader.get(k);
  reader.checkpoint();

  const vetoed = new Set<string>();
  const candidates: TraceCandidate[] = [];
  let vetoes = 0;
  let staleLinks = 0;
  for (const k of candidateOrder(c)) {
    const b = c.live(reader.get(k));
    if (!b) continue;
    const dev = b.record.canonicalDeviceId;
    if (vetoed.has(dev)) continue;
    const provisional = (b.record.provisionalSinceMs ?? 0) > 0;
    const candidate = { device_id: dev, key: { kind: k.kind, value: k.value }, provisional };
    // An address-derived id names whoever held the address, so it links only while that address is
    // still bound to the same device, and then like the address itself: a device that moved away
    // must not be found again through its old name (per-source pruning).
    // An update that carries no address has only the name to go by, and the name is permanent: it
    // links to the device it names (else the same update would make a new device every time).
    let link = b;
    if (k.kind === "device-id" && !c.stableId && u.ip !== "") {
      const addr = addressKeyOfId(k.value);
      const ab = addr ? c.live(reader.get(addr)) : null;
      reader.checkpoint();
      if (!ab || ab.record.canonicalDeviceId !== dev) {
        staleLinks++;
        candidates.push({ ...candidate, verdict: "stale_link" });
        continue;
      }
      link = ab;
    }
    // A MAC an evidently different device took after this observation was made named another device
    // then: it does not pull this (older) sighting onto its holder now. Found by the two-instance
    // suite: an agent's report delivered after a NIC move moved its address onto the MAC's new device.
    if (k.kind === "mac" && b.record.sharedRebindsMs?.some((r) => r > t)) {
      staleLinks++;
      candidates.push({ ...candidate, verdict: "stale_link" });
      continue;
    }
    // An address links a new strong identity only while fresh (or asserted by an address
    // authority); a weak sighting (only an address) follows it for as long as the binding lives.
    // An address authority reporting its own static address links through it whatever its age. A
    // provisional device is whoever holds its address now, so the window does not apply to it.
    const fresh =
      t - link.record.updatedAtMs <= policy.freshnessWindowMs || link.record.authority || c.isAuthority || provisional;
    if (c.strong && (isAddressKind(k.kind) || link !== b) && !fresh) {
      staleLinks++;
      candidates.push({ ...candidate, verdict: "stale_link" });
      continue;
    }
    // Conflicts that veto: strong kinds stronger than the deciding key; for a stable id, which ranks
    // between NetBox ids and MACs, only Armis and NetBox ids.
    const rank =
      k.kind === "device-id" && c.stableId ? kindRank("mac") : isStrongKind(k.kind) ? kindRank(k.kind) : Infinity;
    const stronger = conflictingKinds(c.identity, identityOf(b.record)).filter((x) => kindRank(x) < rank);
    // A stable id is the source's own name for its device, stronger than a MAC (NICs move between
    // machines): when it already names another live device, a MAC or an address cannot pull the
    // sighting onto a different one. Inventory ids (Armis, NetBox) still outrank it.
    const ownDevice = c.stableId ? c.live(reader.get(deviceKey(u.deviceId)))?.record.canonicalDeviceId : undefined;
    const namedElsewhere = ownDevice !== undefined && ownDevice !== dev && kindRank(k.kind) >= kindRank("mac");
    // A self-named newcomer is not pulled by a MAC onto a device with another hostname: a cloned VM
    // (one MAC, two machines). The MAC then moves, and if the two keep taking it from each other it
    // is quarantined as shared.
    const otherHost = identityOf(b.record).hostname;
    if (
      k.kind === "mac" &&
      c.stableId &&
      ownDevice === undefined &&
      otherHost !== "" &&
      c.identity.hostname !== "" &&
      otherHost !== c.identity.hostname
    ) {
      vetoed.add(dev);
      vetoes++;
      candidates.push({
        ...candidate,
        verdict: "vetoed",
        differing: [{ kind: "hostname", update: c.identity.hostname, device: otherHost }],
      });
      continue;
    }
    if (stronger.length > 0 || namedElsewhere) {
      vetoed.add(dev);
      vetoes++;
      candidates.push(
        stronger.length > 0
          ? { ...candidate, verdict: "vetoed", differing: differing(stronger, c.identity, identityOf(b.record)) }
          : {
              ...candidate,
              verdict: "named_elsewhere",
              differing: [{ kind: "device-id", update: ownDevice ?? "", device: dev }],
            },
      );
      continue;
    }
    candidates.push({ ...candidate, verdict: "chosen" });
    return { chosen: { deviceId: dev, kind: k.kind, binding: b }, candidates, vetoed, vetoes, staleLinks };
  }
  return { chosen: undefined, candidates, vetoed, vetoes, staleLinks };
}

/** The identifiers behind a veto, as each side has them. */
function differing(kinds: readonly ("armis-id" | "netbox-id" | "mac")[], update: Identity, device: Identity) {
  const show = (id: Identity, kind: (typeof kinds)[number]) =>
    kind === "armis-id" ? id.armisId : kind === "netbox-id" ? id.netboxIds.join(",") : id.macs.join(",");
  return kinds.map((kind) => ({ kind, update: show(update, kind), device: show(device, kind) }));
}

/**
 * The order in which keys may decide: strong keys strongest first, then a stable device id (a name
 * that does not move), then addresses, then an address-derived id. The bare `ip` key is shared by
 * every partition, so it links only an update that has no partition.
 */
function candidateOrder({ u, ranked, stableId }: UpdateContext): IdentityKey[] {
  const strong = ranked.filter((k) => isStrongKind(k.kind));
  const id = ranked.filter((k) => k.kind === "device-id");
  const pip = ranked.filter((k) => k.kind === "partition-ip");
  const ip = u.partition === "" ? ranked.filter((k) => k.kind === "ip") : [];
  return stableId ? [...strong, ...id, ...pip, ...ip] : [...strong, ...pip, ...ip, ...id];
}
