import { describe, expect, it } from "vitest";
import { renderExplanation } from "../../src/app/publish/explain-command.js";
import { testApp } from "../support/app.js";

describe("idmap explain: the trace, one fact a line", () => {
  it("prints the vetoed candidate with what differed, the take-over, the own id and the rule", async () => {
    const { app } = await testApp();
    try {
      await app.publish.publish(
        [
          {
            device_id: "dev-K",
            ip: "10.1.0.5",
            partition: "p",
            mac: "02:00:00:00:00:01",
            metadata: { armis_device_id: "A1" },
            source: "armis",
          },
          { ip: "10.1.0.9", partition: "p", source: "sweep" },
        ],
        "test",
      );
      const [r] = await app.publish.resolve(
        [
          {
            device_id: "dev-L",
            ip: "10.1.0.9",
            partition: "p",
            mac: "02:00:00:00:00:01, 01:00:5e:00:00:fb",
            metadata: { armis_device_id: "A2" },
            source: "armis",
          },
        ],
        { explain: true },
      );
      expect(renderExplanation(r!, 1).split("\n")).toEqual([
        "update 1 (dev-L): p:10.1.0.9",
        "  refused mac 01:00:5e:00:00:fb: multicast_mac",
        "  mac 02:00:00:00:00:01 names dev-K: vetoed (armis-id A2 here, A1 there)",
        "  partition-ip p:10.1.0.9 names p:10.1.0.9 (provisional): chosen",
        "  provisional device p:10.1.0.9: take_over",
        // dev-K's report holds the MAC at the same time: an evidently different device contests it.
        "  contests mac 02:00:00:00:00:01: another device holds it from a report as new or newer (not moved; ambiguous)",
        "  the update's own id: redirect",
        "  rule: provisional_take_over",
      ]);
    } finally {
      await app.close();
    }
  });
});
