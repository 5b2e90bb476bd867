import { afterEach, describe, expect, it } from "vitest";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";

// Defect 4 of issue 12: the device row stored an address the decision had refused (an out-of-order
// report), and the next lookup of that address answered from the row and hydrated it into the map.
describe("an address the decision refused", () => {
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  for (const mode of ["on", "off"] as const) {
    it(`never reaches the device row, nor comes back through a lookup (flag ${mode})`, async () => {
      const t = await testApp({ CANONICAL_IDENTITY_MAP_ENABLED: mode });
      app = t.app;
      const rest = await buildRestApp(app);
      const T = t.clock.nowMs();
      const device = { device_id: "laptop-4", mac: "02:00:00:00:04:01", source: "agent" };
      const publish = async (u: object) =>
        (await rest.inject({ method: "POST", url: "/v1/device-updates", payload: { updates: [u] } })).json().results[0];
      expect((await publish({ ...device, ip: "10.5.0.1", timestamp: T })).outcome).toBe("created");
      expect((await publish({ ...device, ip: "10.5.0.2", timestamp: T - 60_000 })).outcome).toBe("unchanged");

      expect((await app.devices.getDevice("laptop-4"))?.ip).toBe("10.5.0.1");
      const refused = await rest.inject({ method: "GET", url: "/v1/canonical-devices/lookup?ip=10.5.0.2" });
      expect(refused.statusCode).toBe(404);
      const kept = await rest.inject({ method: "GET", url: "/v1/canonical-devices/lookup?ip=10.5.0.1" });
      expect(kept.json().record.canonical_device_id).toBe("laptop-4");
      await rest.close();
    });
  }
});
