#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command } from "commander";
import type { DeviceUpdate } from "../domain/device-update.js";
import { IdentityMapError } from "../domain/errors.js";
import { queryKeys } from "../domain/lookup-query.js";
import { registerBackfill } from "./backfill/backfill-cli.js";
import { compact } from "./bindings/compaction.js";
import { loadConfig, type Config } from "./config.js";
import { createApp } from "./container.js";
import { startServer } from "./server.js";
import { simulateCommand } from "./simulate/command.js";

const program = new Command()
  .name("idmap")
  .description("identity-map: one canonical id per network device")
  .option("-c, --config <file>", "YAML settings file (the environment wins)");

const config = (): Config => loadConfig(process.env, program.opts<{ config?: string }>().config);

program
  .command("serve")
  .description("run the REST and/or gRPC front-ends (IDMAP_FRONTENDS)")
  .action(async () => {
    const server = await startServer(config());
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      server.app.log.info({ signal }, "shutting down");
      await server.close();
      process.exit(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
  });

program
  .command("migrate")
  .description("create or upgrade the relational schema (and the KV bucket where the backend has one)")
  .action(async () => {
    const app = await createApp(config());
    app.log.info({ db: app.config.db, kv: app.config.kvBackend }, "schema is up to date");
    await app.close();
  });

program
  .command("compact")
  .description("remove expired weak bindings (ip, partition-ip) from the map")
  .action(async () => {
    const app = await createApp({ ...config(), logLevel: "warn" });
    const summary = await compact(app.store, app.devices, app.clock.nowMs(), app.metrics, app.log);
    console.log(
      `scanned ${summary.scanned} bindings: ${summary.expired} expired, ${summary.removed} removed, ` +
        `${summary.raced} refreshed meanwhile and kept`,
    );
    await app.close();
  });

program
  .command("publish")
  .argument("<file>", "JSON Lines (one DeviceUpdate per line) or a JSON array; - for stdin")
  .option("--actor <name>", "who the audit trail names", "cli")
  .description("publish device updates from a file, in-process on the configured stores")
  .action(async (file: string, opts: { actor: string }) => {
    const updates = readUpdates(file);
    const app = await createApp({ ...config(), logLevel: "warn" });
    const results = await app.publish.publish(updates, opts.actor);
    for (const r of results) console.log(JSON.stringify(r));
    await app.close();
  });

program
  .command("lookup")
  .description("look up a canonical device in-process on the configured stores")
  .option("--mac <mac>")
  .option("--ip <ip>")
  .option("--partition <partition>")
  .option("--armis-id <id>")
  .option("--netbox-id <id>")
  .option("--device-id <id>")
  .action(
    async (o: {
      mac?: string;
      ip?: string;
      partition?: string;
      armisId?: string;
      netboxId?: string;
      deviceId?: string;
    }) => {
      const keys = queryKeys(o);
      const app = await createApp({ ...config(), logLevel: "warn" });
      try {
        const r = await app.lookup.lookup({ identityKeys: keys });
        console.log(JSON.stringify(r, null, 2));
        process.exitCode = r.found ? 0 : 1;
      } finally {
        await app.close();
      }
    },
  );

program.addCommand(simulateCommand());

registerBackfill(program, config);

function readUpdates(file: string): DeviceUpdate[] {
  const text = readFileSync(file === "-" ? 0 : file, "utf8").trim();
  if (text.startsWith("[")) return JSON.parse(text) as DeviceUpdate[];
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l, i) => {
      try {
        return JSON.parse(l) as DeviceUpdate;
      } catch {
        throw new Error(`${file}:${i + 1}: not a JSON object`);
      }
    });
}

program.parseAsync(process.argv).catch((e: unknown) => {
  const msg = e instanceof IdentityMapError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
  console.error(`idmap: ${msg}`);
  process.exit(1);
});
