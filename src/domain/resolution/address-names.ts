import type { IdentityKey } from "../identity-key.js";
import { isIp } from "../ip.js";

/** `10.0.0.1`, `tenant-a:10.0.0.1`, `p:fe80::1`: names that come from an address and move with it. */
export function isAddressDerived(id: string): boolean {
  if (isIp(id)) return true;
  const colon = id.indexOf(":");
  return colon > 0 && isIp(id.slice(colon + 1));
}

/** The partition-ip key an address-derived id names (`p:10.0.0.1` -> partition-ip `p:10.0.0.1`). */
export function addressKeyOfId(id: string): IdentityKey | undefined {
  return isAddressDerived(id) ? { kind: "partition-ip", value: id } : undefined;
}
