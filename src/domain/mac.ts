import type { RejectionReason } from "./rejection.js";

export type MacResult = { ok: true; mac: string } | { ok: false; reason: RejectionReason };

const HEX12 = /^[0-9A-Fa-f]{12}$/;
const SEPARATED =
  /^([0-9A-Fa-f]{2})([:-])([0-9A-Fa-f]{2})\2([0-9A-Fa-f]{2})\2([0-9A-Fa-f]{2})\2([0-9A-Fa-f]{2})\2([0-9A-Fa-f]{2})$/;
const CISCO = /^([0-9A-Fa-f]{4})\.([0-9A-Fa-f]{4})\.([0-9A-Fa-f]{4})$/;

/** Separators of a MAC list: comma, semicolon, space, tab, newline (and CR, which the reference missed). */
export const MAC_LIST_SEPARATORS = /[,;\s]+/;

/**
 * Parses one MAC in `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff` or bare 12-hex form into
 * upper-case colon form. Unlike the reference (Go's net.ParseMAC), bare hex is accepted: inventories
 * export it. Values that cannot identify a device are refused with their own reason.
 */
const CANONICAL = /^[0-9A-F]{2}(?::[0-9A-F]{2}){5}$/;

export function normalizeMac(raw: string, denied: ReadonlySet<string> = EMPTY): MacResult {
  // Fast path: a value already in canonical form (what lookups and most sources send).
  if (raw.length === 17 && CANONICAL.test(raw)) {
    const why = nonIdentifying(raw, denied);
    return why ? { ok: false, reason: why } : { ok: true, mac: raw };
  }
  const s = raw.trim();
  let hex: string;
  const sep = SEPARATED.exec(s);
  if (sep) hex = sep[1]! + sep[3]! + sep[4]! + sep[5]! + sep[6]! + sep[7]!;
  else if (HEX12.test(s)) hex = s;
  else {
    const c = CISCO.exec(s);
    if (!c) return { ok: false, reason: "invalid_mac" };
    hex = c[1]! + c[2]! + c[3]!;
  }
  hex = hex.toUpperCase();
  const mac =
    `${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:` +
    `${hex.slice(6, 8)}:${hex.slice(8, 10)}:${hex.slice(10, 12)}`;
  const why = nonIdentifying(mac, denied);
  return why ? { ok: false, reason: why } : { ok: true, mac };
}

const EMPTY: ReadonlySet<string> = new Set();

/** Virtual and placeholder MACs are shared by many devices: binding them would merge strangers. */
export function nonIdentifying(mac: string, denied: ReadonlySet<string>): RejectionReason | undefined {
  if (mac === "00:00:00:00:00:00") return "zero_mac";
  if (mac === "FF:FF:FF:FF:FF:FF") return "broadcast_mac";
  // VRRP for IPv4 (00:00:5E:00:01:xx) and IPv6 (00:00:5E:00:02:xx)
  if (mac.startsWith("00:00:5E:00:01:") || mac.startsWith("00:00:5E:00:02:")) return "vrrp_mac";
  // HSRP v1 (00:00:0C:07:AC:xx) and v2 (00:00:0C:9F:Fx:xx)
  if (mac.startsWith("00:00:0C:07:AC:") || /^00:00:0C:9F:F[0-9A-F]:/.test(mac)) return "hsrp_mac";
  if (denied.has(mac)) return "denied";
  return undefined;
}

/** Splits a list and parses each token; duplicates after normalization collapse to one. */
export function parseMacList(
  raw: string,
  denied?: ReadonlySet<string>,
): { macs: string[]; rejected: { value: string; reason: RejectionReason }[] } {
  const macs: string[] = [];
  const rejected: { value: string; reason: RejectionReason }[] = [];
  for (const token of raw.split(MAC_LIST_SEPARATORS)) {
    if (token === "") continue;
    const r = normalizeMac(token, denied);
    if (r.ok) {
      if (!macs.includes(r.mac)) macs.push(r.mac);
    } else rejected.push({ value: token, reason: r.reason });
  }
  return { macs, rejected };
}
