import { describe, expect, it } from "vitest";
import { assertSafeJson, MAX_JSON_DEPTH } from "../../src/adapters/rest/json-guard.js";
import { InvalidArgument } from "../../src/domain/errors.js";

/** The field an assertSafeJson refusal names, or "" when the value passes. */
function refusedField(value: unknown, rootPath?: string): string {
  try {
    assertSafeJson(value, rootPath);
    return "";
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgument);
    return (e as InvalidArgument).field;
  }
}

describe("assertSafeJson names the offending field", () => {
  it("passes what a request may carry", () => {
    expect(refusedField({ updates: [{ device_id: "d", metadata: { a: "é😀" } }], n: 1, x: null })).toBe("");
    expect(refusedField({ mac: "02:00:00:00:00:01" }, "query")).toBe("");
  });

  it("a lone surrogate in a value or a name, under objects and arrays", () => {
    expect(refusedField({ updates: [{ ip: "1" }, { metadata: { k: "a\ud800" } }] })).toBe("updates[1].metadata.k");
    expect(refusedField({ updates: [{ ["b\udc00"]: "x" }] })).toBe("updates[0].b\udc00");
    expect(refusedField(["ok", ["\ud800"]])).toBe("[1][0]");
    expect(refusedField("\ud800")).toBe("body");
    expect(refusedField({ mac: "\ud800" }, "query")).toBe("query.mac");
  });

  it("`__proto__` as a name, the first one in document order", () => {
    const body = JSON.parse('{"a":[{"__proto__":{}}],"b":{"__proto__":1}}');
    expect(refusedField(body)).toBe("a[0].__proto__");
    expect(refusedField(JSON.parse('{"__proto__":1}'), "params")).toBe("params.__proto__");
  });

  it("nesting past the limit", () => {
    let deep: unknown = "x";
    for (let i = 0; i < MAX_JSON_DEPTH + 5; i++) deep = [deep];
    expect(refusedField({ extra: deep })).toBe(`extra${"[0]".repeat(MAX_JSON_DEPTH - 1)}`);
  });
});
