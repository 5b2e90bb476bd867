import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { normalizeUpdate, type DeviceUpdate } from "../../domain/device-update.js";
import { InvalidArgument } from "../../domain/errors.js";
import type { DeviceRow, DeviceStore } from "../../ports/device-store.js";
import type { Candidate } from "./backfill-plan.js";

export interface SourceCounts {
  readonly storeRows: number;
  readonly fileLines: number;
  /** File lines that name no device (nothing identifies one) or carry no usable timestamp. */
  readonly fileSkipped: number;
}

/**
 * The backfill's input: every relational row (paged by device id), then the `--from` file's
 * sightings, normalized by the same domain code as a publish. A device id seen more than once counts
 * once, as its newest sighting; the relational store's merge and presence stay with it.
 */
export async function readCandidates(
  devices: DeviceStore,
  options: { from?: string; pageSize: number; nowMs: number; deniedMacs?: ReadonlySet<string> },
): Promise<{ candidates: Candidate[]; counts: SourceCounts }> {
  const byId = new Map<string, Candidate>();
  let storeRows = 0;
  for (let after: string | undefined; ; ) {
    const page = await devices.listDevices({
      ...(after !== undefined ? { afterDeviceId: after } : {}),
      limit: options.pageSize,
    });
    for (const row of page) {
      storeRows++;
      byId.set(row.deviceId, fromRow(row));
    }
    if (page.length < options.pageSize) break;
    after = page[page.length - 1]!.deviceId;
  }

  let fileLines = 0;
  let fileSkipped = 0;
  if (options.from) {
    const lines = createInterface({ input: createReadStream(options.from, "utf8"), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === "") continue;
      fileLines++;
      let u: DeviceUpdate;
      try {
        u = JSON.parse(line) as DeviceUpdate;
      } catch {
        throw new InvalidArgument(`${options.from}:${lineNo}`, "not a JSON object");
      }
      if (typeof u !== "object" || u === null || Array.isArray(u))
        throw new InvalidArgument(`${options.from}:${lineNo}`, "not a JSON object");
      // History needs its time: without one a sighting would look new and win the canonical choice.
      const n = normalizeUpdate(u, { nowMs: 0, ...(options.deniedMacs ? { deniedMacs: options.deniedMacs } : {}) });
      if (n.keys.length === 0 || n.deviceId === "" || n.timeMs <= 0) {
        fileSkipped++;
        continue;
      }
      const c: Candidate = {
        deviceId: n.deviceId,
        partition: n.partition,
        ip: n.ip,
        macs: n.macs,
        armisId: n.armisId,
        netboxIds: n.netboxIds,
        hostname: n.hostname,
        source: n.source,
        lastSeenMs: n.timeMs,
        metadata: { ...(u.metadata ?? {}) },
        mergedInto: null,
        inStore: false,
      };
      const cur = byId.get(c.deviceId);
      if (!cur) byId.set(c.deviceId, c);
      else if (c.lastSeenMs > cur.lastSeenMs)
        byId.set(c.deviceId, { ...c, mergedInto: cur.mergedInto, inStore: cur.inStore });
    }
  }
  return { candidates: [...byId.values()], counts: { storeRows, fileLines, fileSkipped } };
}

function fromRow(r: DeviceRow): Candidate {
  return {
    deviceId: r.deviceId,
    partition: r.partition,
    ip: r.ip,
    macs: r.macs,
    armisId: r.armisId,
    netboxIds: r.netboxIds,
    hostname: r.hostname,
    source: r.source,
    lastSeenMs: r.lastSeenMs,
    metadata: r.metadata,
    mergedInto: r.mergedInto,
    inStore: true,
  };
}

/** The relational row for an id only the file knows. */
export function rowFor(c: Candidate, mergedInto: string | null): DeviceRow {
  return {
    deviceId: c.deviceId,
    canonicalDeviceId: mergedInto ?? c.deviceId,
    mergedInto,
    partition: c.partition,
    ip: c.ip,
    macs: c.macs,
    armisId: c.armisId,
    netboxIds: c.netboxIds,
    hostname: c.hostname,
    source: c.source,
    firstSeenMs: c.lastSeenMs,
    lastSeenMs: c.lastSeenMs,
    metadata: c.metadata,
  };
}
