import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLIENT_TYPES, generateTypes, ROOT, servedDocument, writeDocument } from "../../scripts/openapi-document.js";

const bin = (name: string) => join(ROOT, "node_modules/.bin", name);
let doc: { dir: string; file: string };

beforeAll(async () => {
  doc = writeDocument(await servedDocument());
});
afterAll(() => {
  rmSync(doc.dir, { recursive: true, force: true });
});

describe("the OpenAPI document", () => {
  it("passes redocly lint (recommended rules) with no error and no warning", () => {
    // redocly exits non-zero on an error; its JSON report (stdout) also counts warnings.
    const out = execFileSync(bin("redocly"), ["lint", doc.file, "--format=json"], { stdio: "pipe" }).toString();
    const report = JSON.parse(out) as { totals: { errors: number; warnings: number } };
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  }, 60_000);

  it("generates the client's committed types, and the client compiles against freshly generated ones", () => {
    const fresh = join(doc.dir, "openapi.ts");
    generateTypes(doc.file, fresh);
    // A schema change without `npm run client:types` fails here.
    expect(readFileSync(fresh, "utf8")).toBe(readFileSync(CLIENT_TYPES, "utf8"));
    const copy = join(doc.dir, "client");
    cpSync(join(ROOT, "packages/client"), copy, { recursive: true, filter: (p) => !p.includes("dist") });
    cpSync(fresh, join(copy, "src/generated/openapi.ts"));
    execFileSync(bin("tsc"), ["-p", join(copy, "tsconfig.json"), "--noEmit"], { stdio: "pipe" });
  }, 120_000);

  it("types the outcome, kind and matched_by enums and names every schema", () => {
    const d = JSON.parse(readFileSync(doc.file, "utf8"));
    const schemas = d.components.schemas;
    expect(Object.keys(schemas).filter((k) => k.startsWith("def-"))).toEqual([]);
    expect(schemas.PublishResult.properties.outcome.enum).toEqual([
      "created",
      "updated",
      "unchanged",
      "rejected",
      "failed",
    ]);
    expect(schemas.BoundKey.properties.kind.enum).toContain("partition-ip");
    expect(JSON.stringify(schemas.PublishResult.properties.matched_by)).toContain('"armis-id"');
    expect(schemas.DeviceUpdate.example).toMatchObject({ ip: "10.1.0.5", mac: "00:1A:2B:3C:4D:5E" });
    const publish = d.paths["/v1/device-updates"].post;
    expect(publish.security).toEqual([{ bearer: [] }]);
    const list = d.paths["/v1/canonical-devices"].get.parameters;
    expect(list.find((p: { name: string }) => p.name === "limit").schema.type).toBe("integer");
  });
});

describe("the protos", () => {
  it("pass buf lint", () => {
    execFileSync(bin("buf"), ["lint"], { cwd: ROOT, stdio: "pipe" });
  }, 60_000);
});
