import { afterEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { forBackend } from "../support/backends.js";
import { gatedKv } from "../support/gated-kv.js";
import { findViolations, snapshot } from "../support/invariants.js";
import { getLookup, postUpdates, serviceConfig, sharedKv, startService, type Service } from "../support/service.js";

/**
 * Races in decide() (src/domain/resolution.ts) that the consistency tests found, each forced here
 * deterministically and asserted as the design says it should behave: a key bound while another
 * writer rewrites its device stays listed and in step (the device record is the commit point); two
 * writers creating one newcomer make one device (a taken derived id carrying the same strong
 * identity is joined); a sweep of an address its device left does not find the device again
 * through its address-derived name.
 */
forBackend("memory", () => {
  describe("races of decide(), forced deterministically", () => {
    const open: Service[] = [];
    const kv = new MemoryKv();
    const config = serviceConfig({ IDMAP_KV_BACKEND: "memory" }, ":memory:");
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
    });
    const two = async () => {
      const gated = gatedKv(sharedKv(kv));
      const x = await startService(config, { kv: gated });
      const y = await startService(config, { kv: sharedKv(kv) });
      open.push(x, y);
      return { x, y, gated };
    };
    const tag = () => Math.random().toString(16).slice(2, 8);

    it("index race: a key bound by one instance while another rewrites its device's record stays in the device's index", async () => {
      const { x, y, gated } = await two();
      const t = tag();
      const device = {
        device_id: `c:10.9.${parseInt(t.slice(0, 2), 16)}.1`,
        ip: `10.9.${parseInt(t.slice(0, 2), 16)}.1`,
        partition: "c",
        mac: `0a:00:${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4, 6)}:01`,
        hostname: "h",
        source: "armis",
        metadata: { armis_device_id: `A-${t}` },
      };
      expect((await postUpdates(x.rest, [device])).status).toBe(200);
      // X publishes the NetBox record of the device: it writes the device record (listing NB-<t>) and
      // is held just before it binds NB-<t>; meanwhile Y rewrites the same device record.
      const gate = gated.hold("create", `/netbox-id/NB-${t}`);
      const pending = postUpdates(x.rest, [
        {
          device_id: `nb-${t}`,
          mac: device.mac,
          source: "netbox",
          metadata: { integration_type: "netbox", integration_id: `NB-${t}` },
        },
      ]);
      await gate.reached;
      expect((await postUpdates(y.rest, [{ ...device, hostname: "renamed" }])).status).toBe(200);
      gate.release();
      expect((await pending).status).toBe(200);
      const snap = await snapshot(kv, config.namespace, Date.now());
      expect(
        findViolations(snap)
          .filter((v) => v.key.includes(t))
          .map((v) => v.text),
      ).toEqual([]);
    });

    it("derived-id race: two instances creating the same newcomer at once leave one device, not an orphan", async () => {
      const { x, y, gated } = await two();
      const t = tag();
      const name = `c:10.8.${parseInt(t.slice(0, 2), 16)}.7`;
      const old = {
        device_id: name,
        mac: `0a:01:${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4, 6)}:01`,
        source: "armis",
        metadata: { armis_device_id: `OLD-${t}` },
      };
      expect((await postUpdates(x.rest, [old])).status).toBe(200);
      // A newcomer under the same address-derived name: its natural id is taken, so it gets a derived
      // id. X creates that device record and is held before binding the newcomer's keys; Y, seeing
      // the derived id taken (by the same newcomer), derives a longer one and creates a second device.
      const newcomer = {
        device_id: name,
        mac: `0a:02:${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4, 6)}:02`,
        source: "armis",
        metadata: { armis_device_id: `NEW-${t}` },
      };
      const gate = gated.hold("create", (key) => !key.includes("/device-id/"));
      const pending = postUpdates(x.rest, [newcomer]);
      await gate.reached;
      expect((await postUpdates(y.rest, [newcomer])).status).toBe(200);
      gate.release();
      expect((await pending).status).toBe(200);
      const snap = await snapshot(kv, config.namespace, Date.now());
      const devices = [...snap.live.values()].filter(
        (e) =>
          e.kind === "device-id" &&
          e.binding.record.canonicalDeviceId === e.value &&
          e.binding.record.attributes.armis_device_id === `NEW-${t}`,
      );
      expect(devices.map((d) => d.value)).toHaveLength(1);
    });

    it("a sweep of an address its device left does not land on that device (design.md §3, per-source pruning)", async () => {
      const { x } = await two();
      const t = tag();
      const a = `10.7.${parseInt(t.slice(0, 2), 16)}.1`;
      const b = `10.7.${parseInt(t.slice(0, 2), 16)}.2`;
      const laptop = {
        partition: "c",
        mac: `0a:03:${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4, 6)}:03`,
        source: "armis",
        metadata: { armis_device_id: `L-${t}` },
      };
      const now = Date.now();
      await postUpdates(x.rest, [{ ...laptop, device_id: `c:${a}`, ip: a, timestamp: now - 60_000 }]);
      await postUpdates(x.rest, [{ ...laptop, device_id: `c:${b}`, ip: b, timestamp: now - 30_000 }]);
      expect((await getLookup(x.rest, { ip: a, partition: "c" })).status).toBe(404);
      // A sweep of the old address, a minute later: it matches the device through its address-derived
      // name (`c:<old address>`, fresh because the device was just seen elsewhere) and binds the old
      // address to it again, for as long as sweeps keep seeing it.
      const laptopId = (await getLookup(x.rest, { ip: b, partition: "c" })).body.record.canonical_device_id;
      await postUpdates(x.rest, [{ ip: a, partition: "c", source: "sweep", timestamp: now }]);
      // Whatever answers at the old address now (a device known only by it), it is not the laptop.
      const after = await getLookup(x.rest, { ip: a, partition: "c" });
      expect(after.status === 404 || after.body.record.canonical_device_id !== laptopId).toBe(true);
      expect((await getLookup(x.rest, { ip: b, partition: "c" })).body.record.canonical_device_id).toBe(laptopId);
    });
  });
});
