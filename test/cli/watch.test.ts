import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";
import { runCli } from "../support/child-service.js";

const dir = mkdtempSync(join(tmpdir(), "idmap-watch-"));
const kv = new MemoryKv();
let app: App;
let rest: FastifyInstance;
let url: string;

beforeAll(async () => {
  ({ app } = await testApp({}, kv));
  rest = await buildRestApp(app);
  url = await rest.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await rest.close();
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

const devices = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => ({ device_id: `${tag}-${i}`, mac: `02:ee:${tag}:00:00:0${i}`, source: "agent" }));

describe("idmap watch", () => {
  it("--url --json prints each change as a ChangeEvent line, in revision order, and a summary", async () => {
    await app.publish.publish(devices(3, "a1"), "test");
    const r = await runCli(["watch", "--url", url, "--since", "0", "--json", "--limit", "6"], {}, 60_000);
    expect(r.stderr).toMatch(/idmap watch: 6 changes, last revision \d+/);
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(6);
    expect(lines.map((l) => l.revision)).toEqual([...lines.map((l) => l.revision)].sort((x, y) => x - y));
    expect(lines.filter((l) => l.key.kind === "mac").map((l) => l.key.value)).toEqual([
      "02:EE:A1:00:00:00",
      "02:EE:A1:00:00:01",
      "02:EE:A1:00:00:02",
    ]);
    expect(lines[0]).toMatchObject({ operation: "put", canonical_device_id: "a1-0" });
  }, 90_000);

  it("text lines name revision, operation, key and device; a revision the store forgot is an error", async () => {
    const before = (await kv.resumePoint(0)).head;
    await app.publish.publish(devices(1, "b2"), "test");
    const r = await runCli(["watch", "--url", url, "--since", String(before), "--limit", "2"], {}, 60_000);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n")).toContain(`${before + 2} put mac 02:EE:B2:00:00:00 -> b2-0`);
    kv.trimChanges(0);
    const gone = await runCli(["watch", "--url", url, "--since", String(before)], {}, 60_000);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/no longer remembers revision/);
  }, 90_000);

  it("follows the configured stores in-process", async () => {
    const env = { IDMAP_DATA_DIR: join(dir, "data"), IDMAP_LOG_LEVEL: "silent", CANONICAL_IDENTITY_MAP_ENABLED: "on" };
    const file = join(dir, "one.jsonl");
    writeFileSync(file, `${JSON.stringify({ device_id: "solo", mac: "02:aa:00:00:00:07", source: "agent" })}\n`);
    expect((await runCli(["publish", file], env, 60_000)).code).toBe(0);
    const r = await runCli(["watch", "--since", "0", "--limit", "2"], env, 60_000);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("put mac 02:AA:00:00:00:07 -> solo");
  }, 120_000);
});
