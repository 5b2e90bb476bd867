import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestBackend } from "./backends.js";
import type { PairFactory } from "./consistency.js";
import { counterValue, getLookup, postUpdates } from "./service.js";
import { until } from "./servers.js";
import { DOCK, dockedLaptop as laptop } from "./docked-laptop.js";

type Pair = Awaited<ReturnType<PairFactory>>;

/**
 * The quarantine is part of the map: written by one instance, it is answered, listed and released
 * by another, on every KV backend.
 */
export function quarantineSuite(backend: TestBackend, open: PairFactory): void {
  describe(`shared MACs across instances (${backend})`, () => {
    let pair: Pair;
    beforeAll(async () => {
      pair = await open();
      const t = Date.now() - 3 * 3_600_000;
      for (const [i, u] of [
        laptop("lap-A", "A1", "10.0.0.1", `02:00:00:00:00:0A,${DOCK}`, t),
        laptop("lap-B", "A2", "10.0.0.2", DOCK, t + 3_600_000),
        laptop("lap-A", "A1", "10.0.0.1", `02:00:00:00:00:0A,${DOCK}`, t + 2 * 3_600_000),
      ].entries()) {
        const r = await postUpdates(pair.a.rest, [u]);
        expect(r.status, `update ${i}`).toBe(200);
      }
    }, 60_000);
    afterAll(async () => {
      await pair?.close();
    });

    it("the other instance answers a lookup by the dock's MAC as ambiguous: GET 409 with the candidates, POST found false", async () => {
      await until(
        "the quarantine to reach instance b",
        async () => (await getLookup(pair.b.rest, { mac: DOCK })).status === 409,
        10_000,
      );
      const get = await getLookup(pair.b.rest, { mac: DOCK });
      expect(get.body.error).toMatchObject({ code: "ambiguous_identifier", candidates: ["lap-A", "lap-B"] });
      const post = await pair.b.rest.inject({
        method: "POST",
        url: "/v1/canonical-devices/lookup",
        payload: { identity_keys: [{ kind: "mac", value: DOCK }] },
      });
      expect(post.json()).toMatchObject({
        found: false,
        ambiguous: { key: { kind: "mac", value: DOCK }, candidates: ["lap-A", "lap-B"] },
      });
    });

    it("lists it, counts it in the gauge, and a writer's release on the other instance lets it bind afresh", async () => {
      const list = await pair.b.rest.inject({ method: "GET", url: "/v1/identifiers/quarantined" });
      expect(list.json().identifiers).toEqual([
        expect.objectContaining({ kind: "mac", value: DOCK, candidates: ["lap-A", "lap-B"] }),
      ]);
      expect(await counterValue(pair.a.app, "identitymap_quarantined_identifiers")).toBe(1);

      const release = await pair.b.rest.inject({
        method: "DELETE",
        url: `/v1/identifiers/quarantined/mac/${encodeURIComponent(DOCK)}`,
      });
      expect(release.statusCode).toBe(200);
      const again = await pair.b.rest.inject({
        method: "DELETE",
        url: `/v1/identifiers/quarantined/mac/${encodeURIComponent(DOCK)}`,
      });
      expect(again.statusCode).toBe(404);
      expect(again.json().error.code).toBe("not_found");

      // Each instance here has a database of its own: each audits what it did.
      const quarantined = await pair.a.app.devices.history("lap-B", { limit: 100 });
      expect(quarantined.entries.map((e) => e.reason)).toContain("quarantined");
      const released = await pair.b.app.devices.history("lap-B", { limit: 100 });
      expect(released.entries.map((e) => e.reason)).toEqual(["released"]);

      const r = await postUpdates(pair.a.rest, [laptop("lap-B", "A2", "10.0.0.2", DOCK, Date.now())]);
      expect(r.body.results[0].canonical_device_id).toBe("lap-B");
      await until(
        "the new binding to reach instance b",
        async () => (await getLookup(pair.b.rest, { mac: DOCK })).status === 200,
        10_000,
      );
      expect((await getLookup(pair.b.rest, { mac: DOCK })).body.record.canonical_device_id).toBe("lap-B");
    });

    it("a release names what it releases: an unknown kind or an invalid MAC is a 400 naming the field", async () => {
      const kind = await pair.b.rest.inject({ method: "DELETE", url: "/v1/identifiers/quarantined/ip/10.0.0.1" });
      expect([kind.statusCode, kind.json().error.field]).toEqual([400, "kind"]);
      const value = await pair.b.rest.inject({ method: "DELETE", url: "/v1/identifiers/quarantined/mac/nope" });
      expect([value.statusCode, value.json().error.field]).toEqual([400, "value"]);
    });
  });
}
