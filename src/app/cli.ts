#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { IdentityMapApiError, IdentityMapConnectionError } from "@identity-map/client";
import { Command } from "commander";
import { IdentityMapError } from "../domain/errors.js";
import { registerBackfill } from "./backfill/backfill-cli.js";
import { compact } from "./bindings/compaction.js";
import { checkConsistency, describeFinding } from "./check/consistency-check.js";
import { loadConfig, type Config } from "./config.js";
import { createApp } from "./container.js";
import { appLogger } from "./logger.js";
import { serve } from "./server.js";
import { EXIT } from "./cli/exit-codes.js";
import { registerOperatorCommands, registerServiceCommands } from "./cli/service-commands.js";
import { simulateCommand } from "./simulate/command.js";
import { explainCommand } from "./publish/explain-command.js";
import { watchCommand } from "./cli/watch-command.js";

const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

const program = new Command()
  .name("idmap")
  .description("identity-map: one canonical id per network device")
  .version(version)
  .option("-c, --config <file>", "YAML settings file (the environment wins)");

const config = (): Config => loadConfig(process.env, program.opts<{ config?: string }>().config);

program
  .command("serve")
  .description("run the REST and/or gRPC front-ends (IDMAP_FRONTENDS)")
  .action(async () => {
    // Unready, not gone, while the KV or the database does not answer yet: it retries (serve).
    const cfg = config();
    const serving = await serve(cfg);
    serving.ready.catch((e) => {
      process.stderr.write(`idmap: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(EXIT.error);
    });
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      appLogger(cfg).info({ signal }, "shutting down");
      await serving.close();
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

registerServiceCommands(program, config);
registerOperatorCommands(program, config);

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
program.addCommand(watchCommand(config));

registerBackfill(program, config);

program.parseAsync(process.argv).catch((e: unknown) => {
  const msg =
    e instanceof IdentityMapError || e instanceof IdentityMapApiError
      ? `${e.code}${e instanceof IdentityMapApiError && e.field ? ` (${e.field})` : ""}: ${e.message}`
      : e instanceof IdentityMapConnectionError || e instanceof Error
        ? e.message
        : String(e);
  console.error(`idmap: ${msg}`);
  process.exit(EXIT.error);
});
