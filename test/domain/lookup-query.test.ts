import { describe, expect, it } from "vitest";
import { InvalidArgument } from "../../src/domain/errors.js";
import { queryKeys } from "../../src/domain/lookup-query.js";

function refusal(run: () => unknown): { code: string; field: string } | undefined {
  try {
    run();
  } catch (e) {
    if (e instanceof InvalidArgument) return { code: e.code, field: e.field };
    throw e;
  }
  return undefined;
}

describe("the query-to-keys rule (REST GET lookup and CLI lookup share it)", () => {
  it("orders keys strongest first: armis, netbox, mac, partition+ip, ip, device id", () => {
    const keys = queryKeys({
      deviceId: "d-1",
      ip: " 10.0.0.9 ",
      partition: " lab ",
      mac: "aa:bb:cc:dd:ee:ff",
      netboxId: "nb-2",
      armisId: "ar-3",
    });
    expect(keys.map((k) => k.kind)).toEqual(["armis-id", "netbox-id", "mac", "partition-ip", "ip", "device-id"]);
    expect(keys[3]).toEqual({ kind: "partition-ip", value: "lab:10.0.0.9" });
  });

  it("treats blank values as absent", () => {
    expect(queryKeys({ mac: "aa:bb:cc:dd:ee:ff", ip: "  ", partition: "", deviceId: undefined })).toEqual([
      { kind: "mac", value: "aa:bb:cc:dd:ee:ff" },
    ]);
  });

  it("refuses a partition given without an ip instead of dropping it", () => {
    expect(refusal(() => queryKeys({ partition: "lab", mac: "aa:bb:cc:dd:ee:ff" }))).toEqual({
      code: "invalid_argument",
      field: "partition",
    });
  });

  it("refuses a query that names nothing", () => {
    expect(refusal(() => queryKeys({}))).toEqual({ code: "invalid_argument", field: "query" });
    expect(refusal(() => queryKeys({ ip: " " }))).toEqual({ code: "invalid_argument", field: "query" });
  });
});
