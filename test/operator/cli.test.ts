import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/child-service.js";
import { operatorWorld, READER_TOKEN, WRITER_TOKEN, type OperatorWorld } from "./support.js";

const M = "02:00:00:00:03:01";

/** `idmap merge|split|pin|unpin` and `idmap lookup --at` against a running service with auth on. */
describe("the operator's CLI commands (--url, --token)", () => {
  let w: OperatorWorld;
  let url: string;
  const cli = (args: string[], token = WRITER_TOKEN) => runCli([...args, "--url", url, "--token", token], {}, 60_000);
  beforeAll(async () => {
    w = await operatorWorld();
    // The service's clock is the real one here: the child CLI asks "as of" in real time.
    w.clock.now = Date.now();
    await w.publish([
      { device_id: "desk-1", mac: M, ip: "10.3.0.1", partition: "p", source: "agent" },
      { device_id: "desk-1-old", ip: "10.3.0.2", partition: "p", hostname: "desk-1", source: "agent" },
    ]);
    url = await w.rest.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await w?.close();
  });

  it("merge and split print the API's result and a summary; a reader's token is refused with exit code and message", async () => {
    const refused = await cli(["merge", "desk-1-old", "--into", "desk-1"], READER_TOKEN);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/permission_denied|role/);
    const merged = await cli(["merge", "desk-1-old", "--into", "desk-1"]);
    expect(merged.code).toBe(0);
    expect(JSON.parse(merged.stdout).device_id).toBe("desk-1");
    expect(merged.stderr).toMatch(/desk-1-old -> desk-1: \d+ keys moved/);
    const split = await cli(["split", "desk-1", "--key", "device-id=desk-1-old", "--key", "ip=10.3.0.2"]);
    expect(split.code).toBe(0);
    expect(JSON.parse(split.stdout).device_id).toBe("desk-1-old");
  }, 120_000);

  it("pin and unpin a key given in dash notation", async () => {
    const pin = await cli(["pin", "desk-1", `mac=${M.replaceAll(":", "-")}`]);
    expect([pin.code, pin.stderr]).toEqual([0, expect.stringMatching(/idmap pin: mac 02-00/)]);
    const detail = await w.call("GET", "/v1/canonical-devices/desk-1/detail");
    expect(detail.body.keys.find((k: any) => k.kind === "mac").pinned).toBeDefined();
    expect((await cli(["unpin", "desk-1", `mac=${M}`])).code).toBe(0);
    const again = await cli(["unpin", "desk-1", `mac=${M}`]);
    expect(again.code).not.toBe(0);
  }, 120_000);

  it("lookup --at answers who held the address then; exit 4 before anyone did", async () => {
    const now = new Date().toISOString();
    const r = await cli(["lookup", "--ip", "10.3.0.1", "--partition", "p", "--at", now]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ device_id: "desk-1", matched_key: { kind: "partition-ip" } });
    expect(r.stderr).toMatch(/desk-1 held partition-ip p:10.3.0.1/);
    const before = await cli(["lookup", "--ip", "10.3.0.1", "--partition", "p", "--at", "2001-01-01T00:00:00Z"]);
    expect(before.code).toBe(4);
  }, 120_000);
});
