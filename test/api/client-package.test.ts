import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityMapApiError, IdentityMapClient } from "../../packages/client/src/index.js";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { ROOT } from "../../scripts/openapi-document.js";
import { testApp } from "../support/app.js";

let app: App;
let rest: FastifyInstance;
let url: string;
const work = mkdtempSync(join(tmpdir(), "idmap-client-pkg-"));

beforeAll(async () => {
  ({ app } = await testApp());
  rest = await buildRestApp(app);
  url = await rest.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await rest.close();
  await app.close();
  rmSync(work, { recursive: true, force: true });
});

interface PackEntry {
  files: { path: string }[];
  filename: string;
}
const pack = (dir: string, args: string[] = []): PackEntry =>
  (
    JSON.parse(execFileSync("npm", ["pack", "--json", ...args], { cwd: dir, stdio: "pipe" }).toString()) as PackEntry[]
  )[0]!;

describe("npm pack", () => {
  it("ships the server's compiled code and protos, not its tests, benchmarks or sources", () => {
    const paths = pack(ROOT, ["--dry-run"]).files.map((f) => f.path);
    expect(paths).toContain("package.json");
    expect(paths.some((p) => p.startsWith("proto/"))).toBe(true);
    // The operator console's files are served by the service, so they ship with it (issue 16).
    expect(paths).toEqual(expect.arrayContaining(["console/index.html", "console/console.js", "console/console.css"]));
    expect(paths.filter((p) => !/^(dist\/|proto\/|console\/|package\.json$|README\.md$)/.test(p))).toEqual([]);
  }, 60_000);

  it("installs the client alone, with nothing of the server, and its README example runs", async () => {
    const dir = join(ROOT, "packages/client");
    execFileSync(join(ROOT, "node_modules/.bin/tsc"), ["-p", join(dir, "tsconfig.json")], { stdio: "pipe" });
    const packed = pack(dir, ["--pack-destination", work]);
    expect(packed.files.map((f) => f.path).filter((p) => !/^(dist\/|package\.json$|README\.md$)/.test(p))).toEqual([]);
    const project = join(work, "consumer");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    // --offline: the client has no dependencies, so nothing may need the registry.
    execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", join(work, packed.filename)], {
      cwd: project,
      stdio: "pipe",
    });
    const installed = execFileSync("npm", ["ls", "--all", "--parseable"], { cwd: project }).toString().trim();
    expect(installed.split("\n").filter((l) => l.includes("node_modules"))).toHaveLength(1);

    const readme = readFileSync(join(dir, "README.md"), "utf8");
    const example = /```js\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    writeFileSync(join(project, "example.mjs"), example!);
    const out = await new Promise<string>((resolve, reject) => {
      import("node:child_process").then(({ execFile }) =>
        execFile("node", ["example.mjs"], { cwd: project, env: { ...process.env, IDMAP_URL: url } }, (e, stdout) =>
          e ? reject(e) : resolve(stdout),
        ),
      );
    });
    expect(out.split("\n").filter(Boolean)).toEqual([
      "created site-1:10.1.0.5",
      "site-1:10.1.0.5",
      "site-1:10.1.0.5 5",
      "400 invalid_argument identity_keys[0].value",
    ]);
  }, 120_000);
});

describe("the client", () => {
  it("covers history and listing", async () => {
    const client = new IdentityMapClient({ baseUrl: url });
    await client.publish([{ device_id: "h-1", ip: "10.77.0.1", partition: "h", mac: "02:77:00:00:00:01" }]);
    const history = await client.history("h-1", { limit: 2 });
    expect(history.entries.length).toBe(2);
    expect(history.next).toBeTypeOf("number");
    const page = await client.listDevices({ partition: "h" });
    expect(page.devices.map((d) => d.device_id)).toEqual(["h-1"]);
    const missing = await client.history("never-seen").catch((e: unknown) => e);
    expect(missing).toMatchObject({ status: 404, code: "not_found" });
  });

  it("retries a 503 with backoff and gives up with a typed error", async () => {
    let calls = 0;
    let failures = 2;
    const flaky: Server = createServer((_req, res) => {
      calls++;
      const down = failures-- > 0;
      res.writeHead(down ? 503 : 200, { "content-type": "application/json" });
      res.end(
        JSON.stringify(
          down
            ? { error: { code: "kv_unavailable", message: "down" } }
            : { found: false, revision: 0, hydrated: false },
        ),
      );
    });
    await new Promise<void>((r) => flaky.listen(0, "127.0.0.1", r));
    try {
      const base = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`;
      const client = new IdentityMapClient({ baseUrl: base, retry: { attempts: 3, baseDelayMs: 5 } });
      expect(await client.lookup({ identity_keys: [{ kind: "mac", value: "02:00:00:00:00:09" }] })).toMatchObject({
        found: false,
      });
      expect(calls).toBe(3);

      calls = 0;
      failures = 10;
      const e = await client.lookup({ identity_keys: [{ kind: "ip", value: "10.0.0.1" }] }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(IdentityMapApiError);
      expect(e).toMatchObject({ status: 503, code: "kv_unavailable", retryable: true });
      expect(calls).toBe(3);
    } finally {
      await new Promise((r) => flaky.close(r));
    }
  });
});
