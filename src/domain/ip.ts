/**
 * IP normalization to canonical text: IPv4 dotted quad; IPv6 per RFC 5952 (lower case, leading zeros
 * dropped, the longest run of two or more zero groups compressed, the first on a tie, IPv4-mapped
 * addresses with a dotted tail). A `/32` or `/128` suffix is stripped; any other prefix is refused,
 * since a network is not a device. Written by hand because src/domain may not import node:net.
 */
export function normalizeIp(raw: string): string | undefined {
  // The usual case, an address already in canonical dotted-quad form, is its own normal form.
  if (CANONICAL_IPV4.test(raw)) return raw;
  let s = raw.trim();
  const slash = s.indexOf("/");
  if (slash >= 0) {
    const prefix = s.slice(slash + 1);
    s = s.slice(0, slash);
    const v4 = parseIpv4(s);
    if (v4) return prefix === "32" ? formatIpv4(v4) : undefined;
    const v6 = parseIpv6(s);
    return v6 && prefix === "128" ? formatIpv6(v6) : undefined;
  }
  const v4 = parseIpv4(s);
  if (v4) return formatIpv4(v4);
  const v6 = parseIpv6(s);
  return v6 ? formatIpv6(v6) : undefined;
}

export function isIp(s: string): boolean {
  return normalizeIp(s) === s;
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;
/** Four octets of 0-255 without leading zeros: exactly the strings formatIpv4 writes. */
const CANONICAL_IPV4 =
  /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

function parseIpv4(s: string): number[] | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    // Leading zeros are refused: `010` is octal to some parsers and decimal to others.
    if (!OCTET.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

function formatIpv4(o: readonly number[]): string {
  return o.join(".");
}

const HEXGROUP = /^[0-9A-Fa-f]{1,4}$/;

function parseIpv6(s: string): number[] | undefined {
  if (s.length < 2 || s.includes("%")) return undefined;
  const dbl = s.indexOf("::");
  if (dbl >= 0 && s.indexOf("::", dbl + 1) >= 0) return undefined;
  const parseSide = (side: string, allowV4Tail: boolean): number[] | undefined => {
    if (side === "") return [];
    const parts = side.split(":");
    const groups: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (allowV4Tail && i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIpv4(p);
        if (!v4) return undefined;
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!HEXGROUP.test(p)) return undefined;
        groups.push(parseInt(p, 16));
      }
    }
    return groups;
  };
  if (dbl < 0) {
    const g = parseSide(s, true);
    return g && g.length === 8 ? g : undefined;
  }
  const head = parseSide(s.slice(0, dbl), false);
  const tail = parseSide(s.slice(dbl + 2), true);
  if (!head || !tail || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

function formatIpv6(g: readonly number[]): string {
  // IPv4-mapped ::ffff:a.b.c.d keeps its dotted tail (RFC 5952 §5).
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return `::ffff:${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestLen < 2) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}
