import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumPath } from "../support/browser.js";
import { operatorWorld, READER_TOKEN, WRITER_TOKEN, type OperatorWorld } from "./support.js";

/** The screenshots docs/operations.md shows ("Investigate and correct"), taken by this run. */
const SHOTS = join(import.meta.dirname, "../../docs/img");

const LAPTOP_MAC = "02:00:00:00:05:01";
const NIC_MAC = "02:00:00:00:05:02";
const NIC_DASHES = "02-00-00-00-05-02";
const DOCK = "02:00:00:00:0D:0C";

/**
 * The operator console in a real headless Chromium (Debian's package, driven by playwright-core),
 * against the service with auth on: sign in, search by a MAC in dash notation, open the device,
 * merge two devices and split them again, the quarantine, pin conflicts, an as-of search, and a
 * reader refused an action. The page loads nothing from outside the service.
 */
describe("the console at /console in headless Chromium", () => {
  let w: OperatorWorld;
  let browser: Browser;
  let page: Page;
  let base: string;
  const requests: string[] = [];
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `console-${name}.png`), fullPage: true });
  const ready = () => page.waitForSelector("body[data-ready=true]");
  /** The device page of `id`, rendered. (Selectors, not functions: the console's CSP refuses eval.) */
  const onDevice = (id: string) => page.waitForSelector(`body[data-ready=true][data-device=${JSON.stringify(id)}]`);
  const signIn = async (token: string) => {
    await page.waitForSelector("#sign-in[open]");
    await page.fill("#token", token);
    await page.click("#sign-in-form button[type=submit]");
    await page.waitForSelector("#sign-in[open]", { state: "detached" });
  };
  const confirm = async (name?: string) => {
    await page.waitForSelector("#confirm[open]");
    if (name) await shot(name);
    await page.click("#confirm-ok");
    await page.waitForSelector("#confirm[open]", { state: "detached" });
  };

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    w = await operatorWorld();
    const hour = 3_600_000;
    await w.publish([
      {
        device_id: "lap-7",
        mac: LAPTOP_MAC,
        ip: "10.9.0.7",
        partition: "hq",
        hostname: "lap-7",
        metadata: { armis_device_id: "A7" },
        source: "armis",
      },
      {
        device_id: "agent-lap-7-usb",
        mac: NIC_MAC,
        ip: "10.9.0.8",
        partition: "hq",
        hostname: "lap-7",
        source: "agent",
      },
      { ip: "10.9.0.50", partition: "hq", source: "sweep" },
    ]);
    // A dock's MAC that two laptops keep taking from each other: quarantined as shared.
    const dockLaptop = (id: string, armis: string, ip: string, mac: string) => ({
      device_id: id,
      ip,
      partition: "hq",
      mac,
      hostname: id,
      metadata: { armis_device_id: armis },
      source: "armis",
    });
    w.clock.advance(hour);
    await w.publish([dockLaptop("lap-A", "A1", "10.9.1.1", `02:00:00:00:00:0A,${DOCK}`)]);
    w.clock.advance(hour);
    await w.publish([dockLaptop("lap-B", "A2", "10.9.1.2", DOCK)]);
    w.clock.advance(hour);
    await w.publish([dockLaptop("lap-A", "A1", "10.9.1.1", `02:00:00:00:00:0A,${DOCK}`)]);
    w.clock.advance(60_000);
    base = await w.rest.listen({ host: "127.0.0.1", port: 0 });
    browser = await chromium.launch({ executablePath: chromiumPath(), args: ["--no-sandbox"], headless: true });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
    page.on("request", (r) => requests.push(r.url()));
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await w?.close();
  });

  it("asks for a token (auth is on) and shows who signed in", async () => {
    await page.goto(`${base}/console/`);
    await signIn(WRITER_TOKEN);
    await ready();
    expect(await page.getByTestId("who").textContent()).toMatch(/^token:[0-9a-f]{8} · writer$/);
  });

  it("searches a device by a MAC in dash notation and opens its page: keys and history", async () => {
    await page.fill("[data-testid=search-input]", NIC_DASHES);
    await page.click("[data-testid=search-button]");
    await page.waitForSelector("[data-testid=search-result]");
    await shot("search");
    expect(await page.getByTestId("search-result").textContent()).toContain("agent-lap-7-usb");
    await page.click("[data-testid=search-result] a");
    await onDevice("agent-lap-7-usb");
    const keys = await page.getByTestId("device-keys").textContent();
    expect(keys).toContain(NIC_MAC);
    expect(keys).toContain("hq:10.9.0.8");
    const timeline = await page.getByTestId("timeline").textContent();
    expect(timeline).toContain("agent-lap-7-usb");
    expect(await page.getByTestId("explanation").textContent()).toMatch(/Rule: /);
    await shot("device");
  });

  it("merges the NIC's device into the laptop, with a confirmation", async () => {
    await page.fill("[data-testid=merge-into]", "lap-7");
    await page.click("[data-testid=merge-button]");
    await confirm("merge-confirm");
    await page.waitForSelector("[data-testid=notice]");
    await onDevice("lap-7");
    expect(await page.getByTestId("device-keys").textContent()).toContain(NIC_MAC);
    expect(await page.getByTestId("redirects-in").textContent()).toContain("agent-lap-7-usb");
    expect((await w.call("GET", `/v1/canonical-devices/lookup?mac=${NIC_MAC}`)).body.record.canonical_device_id).toBe(
      "lap-7",
    );
    await shot("merged");
  });

  it("splits them again: the NIC's MAC and its old id become a device of their own", async () => {
    await page.check(`input[aria-label="split mac ${NIC_MAC}"]`);
    await page.check('input[aria-label="split device-id agent-lap-7-usb"]');
    await page.click("[data-testid=split-button]");
    await confirm("split-confirm");
    await onDevice("agent-lap-7-usb");
    expect(await page.getByTestId("device-keys").textContent()).toMatch(/pinned by token:/);
    expect((await w.call("GET", `/v1/canonical-devices/lookup?mac=${NIC_MAC}`)).body.record.canonical_device_id).toBe(
      "agent-lap-7-usb",
    );
    await shot("split");
  });

  it("lists a pin conflict: a stronger sighting refused by the split's pin", async () => {
    w.clock.advance(60_000);
    await w.publish([
      { device_id: "lap-7", mac: `${LAPTOP_MAC},${NIC_MAC}`, metadata: { armis_device_id: "A7" }, source: "armis" },
    ]);
    await page.click("nav a[data-nav=conflicts]");
    await page.waitForSelector("[data-testid=pin-conflicts]");
    const text = await page.getByTestId("pin-conflicts").textContent();
    expect(text).toContain(NIC_MAC);
    expect(text).toContain("lap-7");
    await shot("pin-conflicts");
  });

  it("lists quarantined identifiers with their candidates", async () => {
    await page.click("nav a[data-nav=quarantine]");
    await page.waitForSelector("[data-testid=quarantined]");
    const text = await page.getByTestId("quarantined").textContent();
    expect(text).toContain(DOCK);
    expect(text).toContain("lap-B");
    await shot("quarantine");
    await page.click("[data-testid=quarantined] button");
    await confirm();
    await page.waitForSelector("[data-testid=notice]");
    await page.waitForSelector("[data-testid=quarantined] >> text=None.");
    expect((await w.call("GET", "/v1/identifiers/quarantined")).body.identifiers).toEqual([]);
  });

  it("pins and unpins a key from the device page, with a confirmation", async () => {
    await page.goto(`${base}/console/#/device/lap-7`);
    await onDevice("lap-7");
    const row = `tr[data-kind="mac"][data-value="${LAPTOP_MAC}"]`;
    await page.click(`${row} button`);
    await confirm();
    await page.waitForSelector(`${row} >> text=pinned by token:`);
    const pinned = (await w.call("GET", "/v1/canonical-devices/lap-7/detail")).body.keys;
    expect(pinned.find((k: any) => k.value === LAPTOP_MAC).pinned).toBeDefined();
    await page.click(`${row} button`);
    await confirm();
    await page.waitForSelector(`${row} button:text-is("Pin")`);
    const unpinned = (await w.call("GET", "/v1/canonical-devices/lap-7/detail")).body.keys;
    expect(unpinned.find((k: any) => k.value === LAPTOP_MAC).pinned).toBeUndefined();
  });

  it("answers an as-of search: who held the address at a time", async () => {
    const before = new Date(w.clock.now - 3 * 3_600_000 - 30_000).toISOString().slice(0, 19);
    await page.goto(`${base}/console/#/search`);
    await ready();
    await page.fill("[data-testid=search-input]", "hq:10.9.0.8");
    await page.fill("[data-testid=as-of-input]", before);
    await page.click("[data-testid=search-button]");
    await page.waitForSelector("[data-testid=as-of-result]");
    expect(await page.getByTestId("as-of-result").textContent()).toContain("agent-lap-7-usb");
    await shot("as-of");
  });

  it("a reader sees the device but is refused an action", async () => {
    await page.click("#sign-out");
    await signIn(READER_TOKEN);
    await page.waitForSelector("#who[data-role=reader]");
    await page.goto(`${base}/console/#/device/lap-7`);
    await onDevice("lap-7");
    expect(await page.getByTestId("who").textContent()).toMatch(/reader$/);
    await page.fill("[data-testid=merge-into]", "agent-lap-7-usb");
    await page.click("[data-testid=merge-button]");
    await confirm();
    await page.waitForSelector("[data-testid=error]");
    expect(await page.getByTestId("error").textContent()).toMatch(/reader role; this action needs the writer role/);
    expect((await w.call("GET", `/v1/canonical-devices/lookup?mac=${NIC_MAC}`)).body.record.canonical_device_id).toBe(
      "agent-lap-7-usb",
    );
    await shot("reader-refused");
  });

  it("loaded nothing from outside the service, and never put a token in a URL", () => {
    expect(requests.length).toBeGreaterThan(10);
    for (const url of requests) {
      expect(url.startsWith(base)).toBe(true);
      expect(url).not.toContain(WRITER_TOKEN);
      expect(url).not.toContain(READER_TOKEN);
    }
  });
});
