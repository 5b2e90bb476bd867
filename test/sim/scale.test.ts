import { describe, expect, it } from "vitest";
import { judgeRate } from "../../src/app/simulate/scale.js";

describe("rate targets judged in proportion to the run", () => {
  it("tolerates the target's share of misses at scale, and not one more", () => {
    expect(judgeRate(500, 50_000, 99)).toEqual({ met: true });
    expect(judgeRate(501, 50_000, 99)).toEqual({ met: false });
    expect(judgeRate(1, 100, 99)).toEqual({ met: true });
  });

  it("on a fleet too small for the rate, forgives one miss and says the target holds only at scale", () => {
    const one = judgeRate(1, 30, 99);
    expect(one.met).toBe(true);
    expect(one.atScaleOnly).toBeDefined();
    expect(judgeRate(2, 30, 99)).toEqual({ met: false });
    expect(judgeRate(0, 30, 99)).toEqual({ met: true });
    expect(judgeRate(0, 0, 99)).toEqual({ met: true });
  });
});
