#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command } from "commander";
import type { DeviceUpdate } from "../domain/device-update.js";
import { IdentityMapError } from "../domain/errors.js";
import { queryKeys } from "../domain/lookup-query.js";
import { registerBackfill } from "./backfill/backfill-cli.js";
import { compact } from "./bindings/compaction.js";
import { checkConsistency, describeFinding } from "./check/consistency-check.js";
import { loadConfig, type Config } from "./config.js";
import { createApp } from "./container.js";
import { startServer } from "./server.js";
import { simulateCommand } from "./simulate/command.js";
import { explainCommand } from "./publish/explain-command.js";

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
        // The operator runs this on the stores themselves: a relational answer may be hydrated.
        const r = await app.lookup.lookup({ identityKeys: keys, mayWrite: true });
        console.log(JSON.stringify(r, null, 2));
        process.exitCode = r.found ? 0 : 1;
      } finally {
        await app.close();
      }
    },
  );

program
  .command("check")
  .description("walk the map and the relational store and report every disagreement; exits 1 on any")
  .option("--json", "one JSON finding per line instead of text")
  .action(async (o: { json?: boolean }) => {
    const app = await createApp({ ...config(), logLevel: "warn" });
    try {
      const findings = await checkConsistency({
        // Where the map lives: the KV with the flag on, the relational binding table otherwise.
        kv: app.config.mode === "on" ? app.kv : app.devices.bindings(),
        namespace: app.config.namespace,
        devices: [app.devices],
        nowMs: app.clock.nowMs(),
      });
      for (const f of findings) console.log(o.json ? JSON.stringify(f) : describeFinding(f));
      console.error(
        `idmap check: ${findings.length} finding${findings.length === 1 ? "" : "s"} in ${app.config.namespace}`,
      );
      process.exitCode = findings.length === 0 ? 0 : 1;
    } finally {
      await app.close();
    }
  });

program.addCommand(simulateCommand());
program.addCommand(explainCommand(config));

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
