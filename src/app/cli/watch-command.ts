import { Command, InvalidArgumentError } from "commander";
import { changeJson } from "../../adapters/rest/change-messages.js";
import { sharedIdentifierPolicy } from "../../domain/shared-identifier.js";
import { followChanges, RevisionGone } from "../../client/change-stream.js";
import type { ChangeEvent as WireChange } from "../../client/stream-types.js";
import { RevisionCompacted } from "../../domain/errors.js";
import type { ChangeEvent } from "../../ports/changes.js";
import type { Config } from "../config.js";
import { createApp } from "../container.js";
import { EXIT } from "./exit-codes.js";

interface WatchOptions {
  readonly url?: string;
  readonly token?: string;
  readonly since?: number;
  readonly json?: boolean;
  readonly limit?: number;
}

/** `1234 put mac AA:BB:CC:DD:EE:FF -> dev-1`, or the ChangeEvent JSON with --json. */
function line(c: WireChange, json: boolean): string {
  if (json) return JSON.stringify(c);
  const to = c.operation === "put" ? ` -> ${c.canonical_device_id}` : "";
  return `${c.revision} ${c.operation} ${c.key.kind} ${c.key.value}${to}`;
}

/**
 * `idmap watch [--since REV] [--json]`: prints binding changes as they happen, from the configured
 * stores in this process or from a running service (--url; reconnecting after a dropped stream from
 * the last revision printed). Ctrl-C ends it with a summary on stderr.
 */
export function watchCommand(config: () => Config): Command {
  return new Command("watch")
    .description("print binding changes as they happen (from --since, else from now); Ctrl-C to stop")
    .option("--since <rev>", "print changes after this revision", (v) => revision(v))
    .option("--json", "one ChangeEvent JSON object per line (the SSE data of GET /v1/changes)")
    .option("--limit <n>", "stop after this many changes", (v) => revision(v, 1))
    .option("--url <url>", "a running service (http://host:8080); default: the configured stores, in-process")
    .option("--token <token>", "bearer token with the reader role, for --url")
    .action(async (o: WatchOptions) => {
      let printed = 0;
      let last = o.since;
      const done = new AbortController();
      const print = (c: WireChange): void => {
        if (done.signal.aborted) return;
        process.stdout.write(`${line(c, o.json === true)}\n`);
        printed++;
        last = c.revision;
        if (o.limit !== undefined && printed >= o.limit) done.abort();
      };
      const summary = () => {
        const at = last !== undefined ? `, last revision ${last}` : "";
        process.stderr.write(`idmap watch: ${printed} change${printed === 1 ? "" : "s"}${at}\n`);
      };
      process.once("SIGINT", () => done.abort());
      process.once("SIGTERM", () => done.abort());
      try {
        if (o.url) await watchRemote(o.url, o.token, () => last, print, done.signal);
        else await watchHere(config, o.since, print, done.signal);
      } catch (e) {
        if (e instanceof RevisionGone || e instanceof RevisionCompacted) {
          summary();
          throw new Error(
            `the store no longer remembers revision ${last ?? o.since}; start again from a newer one ` +
              `(the newest is ${e.revision})`,
          );
        }
        throw e;
      }
      summary();
      process.exitCode = EXIT.ok;
    });
}

async function watchHere(
  config: () => Config,
  since: number | undefined,
  print: (c: WireChange) => void,
  signal: AbortSignal,
): Promise<void> {
  const app = await createApp({ ...config(), logLevel: "warn" });
  try {
    let failure: Error | undefined;
    const from = since ?? (await app.changes.head());
    const shared = sharedIdentifierPolicy(app.config);
    const ended = new Promise<void>((resolve) => {
      signal.addEventListener("abort", () => resolve(), { once: true });
      void app.changes
        .follow(
          from,
          {
            changes: (batch: readonly ChangeEvent[]) => {
              for (const c of batch) print(changeJson(c, shared) as WireChange);
            },
            heartbeat: () => {},
            end: (e) => {
              failure = e;
              resolve();
            },
          },
          "rest",
          "--since",
        )
        .then((f) => signal.addEventListener("abort", () => f.close(), { once: true }))
        .catch((e: Error) => {
          failure = e;
          resolve();
        });
    });
    await ended;
    if (failure) throw failure;
  } finally {
    await app.close();
  }
}

async function watchRemote(
  url: string,
  token: string | undefined,
  cursor: () => number | undefined,
  print: (c: WireChange) => void,
  signal: AbortSignal,
): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    try {
      for await (const item of followChanges({ baseUrl: url, signal, ...(token ? { token } : {}) }, cursor())) {
        failures = 0;
        if (item.type === "change") print(item.change);
        if (signal.aborted) return;
      }
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof RevisionGone) throw e;
      const status = (e as { status?: number }).status;
      // A refusal (401, 403, 400) will not change by retrying; an outage may.
      if (status !== undefined && status >= 400 && status < 500) throw e;
      process.stderr.write(`idmap watch: ${e instanceof Error ? e.message : String(e)}; reconnecting\n`);
    }
    await new Promise((r) => setTimeout(r, Math.min(10_000, 250 * 2 ** failures++)));
  }
}

function revision(v: string, min = 0): number {
  if (!/^\d+$/.test(v) || Number(v) < min) throw new InvalidArgumentError(`expected an integer of at least ${min}`);
  return Number(v);
}
