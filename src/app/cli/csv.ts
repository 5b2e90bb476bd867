import type { ListedDevice } from "@identity-map/client";

const COLUMNS = [
  "device_id",
  "partition",
  "ip",
  "hostname",
  "source",
  "provisional",
  "first_seen_unix_millis",
  "last_seen_unix_millis",
  "keys",
] as const;

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. */
function field(v: string | number | boolean): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A header line, then one line per device; its keys as `kind=value`, space-separated, in one field. */
export async function* devicesAsCsv(devices: AsyncIterable<ListedDevice>): AsyncGenerator<string> {
  yield COLUMNS.join(",");
  for await (const d of devices) {
    const keys = d.keys.map((k) => `${k.kind}=${k.value}`).join(" ");
    yield COLUMNS.map((c) => field(c === "keys" ? keys : d[c])).join(",");
  }
}
