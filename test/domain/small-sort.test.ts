import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sortSmall } from "../../src/domain/small-sort.js";

describe("sortSmall", () => {
  it("orders strings as Array.prototype.sort does, short arrays and long", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "binary" }), { maxLength: 40 }), (a) => {
        expect(sortSmall([...a])).toEqual([...a].sort());
      }),
      { numRuns: 2000 },
    );
  });

  it("is stable under a comparator, as Array.prototype.sort is", () => {
    const byRank = (x: { rank: number }, y: { rank: number }) => x.rank - y.rank;
    fc.assert(
      fc.property(
        fc.array(fc.record({ rank: fc.integer({ min: 0, max: 3 }), tag: fc.nat() }), { maxLength: 40 }),
        (a) => {
          expect(sortSmall([...a], byRank)).toEqual([...a].sort(byRank));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("sorts in place and returns the array", () => {
    const a = ["b", "a", "c"];
    expect(sortSmall(a)).toBe(a);
    expect(a).toEqual(["a", "b", "c"]);
  });
});
