import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import {
  IdentityMapApiError,
  type IdentityKind,
  type IdentityMapClient,
  type PublishResult,
} from "@identity-map/client";
import type { Command } from "commander";
import type { DeviceUpdate } from "../../domain/device-update.js";
import type { Config } from "../config.js";
import { devicesAsCsv } from "./csv.js";
import { EXIT } from "./exit-codes.js";
import { type RemoteOptions, serviceClient } from "./service-client.js";

/*
 * The commands that act on the service: in this process on the configured stores, or on a running
 * service with --url. Results go to stdout in the API's JSON shape (one per line); the summary and
 * progress go to stderr, so stdout stays machine-readable.
 */

type Out = (line: string) => Promise<void>;

/** Writes a line to stdout, waiting when the pipe is full: an export never piles up in memory. */
const stdoutLine: Out = (line) =>
  new Promise((resolve) => {
    if (process.stdout.write(`${line}\n`)) resolve();
    else process.stdout.once("drain", resolve);
  });

function remote(cmd: Command): Command {
  return cmd
    .option("--url <url>", "a running service (http://host:8080); default: the configured stores, in-process")
    .option("--token <token>", "bearer token for --url");
}

async function withClient<T>(
  opts: RemoteOptions,
  config: () => Config,
  f: (client: IdentityMapClient) => Promise<T>,
): Promise<T> {
  const { client, close } = await serviceClient(opts, config);
  try {
    return await f(client);
  } finally {
    await close();
  }
}

export function registerServiceCommands(program: Command, config: () => Config): void {
  remote(program.command("publish"))
    .argument("<file>", "JSON Lines (one DeviceUpdate per line) or a JSON array; - for stdin")
    .option("--actor <name>", "who the audit trail names (in-process)", "cli")
    .option("--batch-size <n>", "updates per request", (v) => positiveInt("--batch-size", v), 500)
    .option("--progress", "a progress line per batch on stderr (default when stderr is a terminal)")
    .description("publish device updates in batches; prints one result per update and a summary")
    .action(async (file: string, opts: RemoteOptions & { batchSize: number; progress?: boolean }) => {
      const progress = opts.progress ?? process.stderr.isTTY;
      const totals = { created: 0, updated: 0, unchanged: 0, rejected: 0, failed: 0 };
      let sent = 0;
      await withClient(opts, config, async (client) => {
        const flush = async (batch: DeviceUpdate[]) => {
          const results: PublishResult[] = await client.publish(batch);
          for (const r of results) {
            totals[r.outcome]++;
            await stdoutLine(JSON.stringify(r));
          }
          sent += batch.length;
          if (progress) process.stderr.write(`idmap publish: ${sent} updates sent\n`);
        };
        let batch: DeviceUpdate[] = [];
        for await (const update of readUpdates(file)) {
          batch.push(update);
          if (batch.length >= opts.batchSize) await flush(batch.splice(0));
        }
        if (batch.length > 0) await flush(batch);
        batch = [];
      });
      const summary = Object.entries(totals)
        .map(([k, v]) => `${v} ${k}`)
        .join(", ");
      process.stderr.write(`idmap publish: ${sent} updates: ${summary}\n`);
      process.exitCode = totals.rejected + totals.failed > 0 ? EXIT.partial : EXIT.ok;
    });

  remote(program.command("lookup"))
    .description("look up a canonical device (strongest given identifier first); exit 4 on a miss")
    .option("--mac <mac>")
    .option("--ip <ip>")
    .option("--partition <partition>")
    .option("--armis-id <id>")
    .option("--netbox-id <id>")
    .option("--device-id <id>")
    .option("--at <time>", "as of this time (RFC 3339): the device that held the identifier then")
    .action(
      async (
        o: RemoteOptions & Record<"mac" | "ip" | "partition" | "armisId" | "netboxId" | "deviceId" | "at", string>,
      ) => {
        const query = {
          mac: o.mac,
          ip: o.ip,
          partition: o.partition,
          armis_id: o.armisId,
          netbox_id: o.netboxId,
          device_id: o.deviceId,
        };
        if (o.at !== undefined) return lookupAsOf(o, config, query, o.at);
        const r = await withClient(o, config, (client) => client.lookupBy(query));
        if (!r) {
          process.stderr.write("idmap lookup: no device holds these identifiers\n");
          process.exitCode = EXIT.miss;
          return;
        }
        await stdoutLine(JSON.stringify(r));
        process.stderr.write(
          `idmap lookup: ${r.record?.canonical_device_id} by ${r.matched_key?.kind} ${r.matched_key?.value}\n`,
        );
      },
    );

  remote(program.command("history"))
    .argument("<device-id>")
    .option("--limit <n>", "entries, newest first", (v) => positiveInt("--limit", v), 50)
    .description("a device's binding changes, newest first; exit 4 when the device is unknown")
    .action(async (deviceId: string, opts: RemoteOptions & { limit: number }) => {
      const page = await withClient(opts, config, (client) =>
        client.history(deviceId, { limit: opts.limit }).catch((e: unknown) => {
          if (e instanceof IdentityMapApiError && e.status === 404) return null;
          throw e;
        }),
      );
      if (!page) {
        process.stderr.write(`idmap history: device ${deviceId} is not known\n`);
        process.exitCode = EXIT.miss;
        return;
      }
      for (const e of page.entries) await stdoutLine(JSON.stringify(e));
      process.stderr.write(
        `idmap history: ${page.entries.length} entries${page.next ? " (more: raise --limit)" : ""}\n`,
      );
    });

  remote(program.command("export"))
    .description("every canonical device with its keys, streamed page by page")
    .option("--format <format>", "ndjson or csv", (v) => oneOf("--format", v, ["ndjson", "csv"]), "ndjson")
    .option("--partition <partition>")
    .option("--source <source>")
    .option("--hostname <hostname>")
    .option("--updated-since <time>", "RFC 3339")
    .option("--provisional <bool>", "true or false", (v) => oneOf("--provisional", v, ["true", "false"]))
    .option("--page-size <n>", "devices per request (1-1000)", (v) => positiveInt("--page-size", v), 1000)
    .action(
      async (
        o: RemoteOptions & {
          format: "ndjson" | "csv";
          partition?: string;
          source?: string;
          hostname?: string;
          updatedSince?: string;
          provisional?: "true" | "false";
          pageSize: number;
        },
      ) => {
        let n = 0;
        await withClient(o, config, async (client) => {
          const devices = client.exportDevices({
            limit: o.pageSize,
            ...(o.partition !== undefined ? { partition: o.partition } : {}),
            ...(o.source !== undefined ? { source: o.source } : {}),
            ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
            ...(o.updatedSince !== undefined ? { updated_since: o.updatedSince } : {}),
            ...(o.provisional !== undefined ? { provisional: o.provisional === "true" } : {}),
          });
          const lines = o.format === "csv" ? devicesAsCsv(devices) : ndjson(devices);
          for await (const line of lines) {
            await stdoutLine(line);
            n++;
          }
        });
        process.stderr.write(`idmap export: ${o.format === "csv" ? n - 1 : n} devices\n`);
      },
    );
}

/** `idmap lookup --at`: who held the identifier then (ADR 0016); exit 4 when nobody did. */
async function lookupAsOf(
  o: RemoteOptions,
  config: () => Config,
  query: Record<string, string | undefined>,
  at: string,
): Promise<void> {
  const r = await withClient(o, config, (client) => client.lookupAsOf(query, at));
  if (!r) {
    process.stderr.write(`idmap lookup: no device held these identifiers at ${at}\n`);
    process.exitCode = EXIT.miss;
    return;
  }
  await stdoutLine(JSON.stringify(r));
  const until = r.until_unix_millis === undefined ? "still" : `until ${new Date(r.until_unix_millis).toISOString()}`;
  process.stderr.write(
    `idmap lookup: at ${r.at} ${r.device_id} held ${r.matched_key.kind} ${r.matched_key.value} ` +
      `(since ${new Date(r.since_unix_millis).toISOString()}, ${until})\n`,
  );
}

/** The operator's manual decisions (ADR 0016): merge, split, pin, unpin; audited under --actor or the token. */
export function registerOperatorCommands(program: Command, config: () => Config): void {
  remote(program.command("merge"))
    .argument("<device-id>", "the device whose keys move")
    .requiredOption("--into <device-id>", "the device that receives them")
    .option("--actor <name>", "who the audit trail names (in-process)", "cli")
    .description("merge a device into another: its keys move there, pinned, and its id redirects there")
    .action(async (deviceId: string, o: RemoteOptions & { into: string }) => {
      const r = await withClient(o, config, (client) => client.merge(deviceId, o.into));
      await stdoutLine(JSON.stringify(r));
      process.stderr.write(`idmap merge: ${deviceId} -> ${r.device_id}: ${r.moved_keys.length} keys moved\n`);
    });

  remote(program.command("split"))
    .argument("<device-id>", "the device the keys leave")
    .requiredOption("--key <kind=value...>", "a key to split off, e.g. mac=00-1A-2B-3C-4D-5E (repeat)")
    .option("--actor <name>", "who the audit trail names (in-process)", "cli")
    .description("split keys off a device: they become a new device, pinned there")
    .action(async (deviceId: string, o: RemoteOptions & { key: string[] }) => {
      const keys = o.key.map((k) => parseKeyArg("--key", k));
      const r = await withClient(o, config, (client) => client.split(deviceId, keys));
      await stdoutLine(JSON.stringify(r));
      process.stderr.write(`idmap split: ${r.moved_keys.length} keys left ${deviceId} for ${r.device_id}\n`);
    });

  for (const [name, verb] of [
    ["pin", "pin a key where it stands: sightings no longer move it"],
    ["unpin", "lift a pin: the resolution rules apply to the key again"],
  ] as const) {
    remote(program.command(name))
      .argument("<device-id>")
      .argument("<kind=value>", "the key, e.g. mac=00:1A:2B:3C:4D:5E")
      .option("--actor <name>", "who the audit trail names (in-process)", "cli")
      .description(verb)
      .action(async (deviceId: string, keyArg: string, o: RemoteOptions) => {
        const key = parseKeyArg("<kind=value>", keyArg);
        await withClient(o, config, (client) =>
          name === "pin" ? client.pin(deviceId, key) : client.unpin(deviceId, key),
        );
        process.stderr.write(`idmap ${name}: ${key.kind} ${key.value} on ${deviceId}\n`);
      });
  }
}

function parseKeyArg(flag: string, v: string): { kind: IdentityKind; value: string } {
  const eq = v.indexOf("=");
  if (eq <= 0) throw new Error(`${flag}: write kind=value, e.g. mac=00:1A:2B:3C:4D:5E`);
  return { kind: v.slice(0, eq) as IdentityKind, value: v.slice(eq + 1) };
}

async function* ndjson(devices: AsyncIterable<unknown>): AsyncGenerator<string> {
  for await (const d of devices) yield JSON.stringify(d);
}

/** Updates one at a time from JSON Lines, or from a JSON array (which is read whole). */
async function* readUpdates(file: string): AsyncGenerator<DeviceUpdate> {
  const lines = createInterface({ input: file === "-" ? process.stdin : createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  let array: string[] | null = null;
  for await (const line of lines) {
    n++;
    if (array) {
      array.push(line);
      continue;
    }
    const t = line.trim();
    if (t === "") continue;
    if (t.startsWith("[")) {
      array = [line];
      continue;
    }
    try {
      yield JSON.parse(t) as DeviceUpdate;
    } catch {
      throw new Error(`${file}:${n}: not a JSON object`);
    }
  }
  if (array) yield* JSON.parse(array.join("\n")) as DeviceUpdate[];
}

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag}: must be a positive integer`);
  return n;
}

function oneOf<T extends string>(flag: string, v: string, values: readonly T[]): T {
  if (!(values as readonly string[]).includes(v)) throw new Error(`${flag}: must be one of ${values.join(", ")}`);
  return v as T;
}
