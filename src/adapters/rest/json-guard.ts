import { InvalidArgument } from "../../domain/errors.js";

/** No request shape nests deeper than 5; 32 leaves room and stops a body of 5 000 nested arrays. */
export const MAX_JSON_DEPTH = 32;

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Refuses, naming the field, what no request may carry: nesting past MAX_JSON_DEPTH, a `__proto__`
 * key (prototype pollution if any code ever merged the body into an object), and text that is not
 * Unicode (a lone UTF-16 surrogate: no identifier can be that, the protobuf record cannot hold it,
 * nor can a database). The walk keeps its own stack, so no input can overflow the call stack
 * (defect 7 of issue 12: a recursive check threw RangeError on deep arrays and answered 500).
 */
export function assertSafeJson(root: unknown, rootPath = ""): void {
  if (isSafeFlatStrings(root)) return;
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: root, path: rootPath, depth: 0 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { value, path, depth } = item;
    if (typeof value === "string") {
      if (LONE_SURROGATE.test(value)) throw new InvalidArgument(path || "body", NOT_UNICODE);
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    if (depth >= MAX_JSON_DEPTH)
      throw new InvalidArgument(path || "body", `nested deeper than ${MAX_JSON_DEPTH} levels`);
    // Pushed in reverse so the first offending field in document order is the one named.
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--)
        stack.push({ value: value[i], path: `${path}[${i}]`, depth: depth + 1 });
      continue;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i]!;
      const at = path === "" ? k : `${path}.${k}`;
      if (k === "__proto__") throw new InvalidArgument(at, "is a forbidden property name");
      if (LONE_SURROGATE.test(k)) throw new InvalidArgument(at, NOT_UNICODE);
      stack.push({ value: (value as Record<string, unknown>)[k], path: at, depth: depth + 1 });
    }
  }
}

const NOT_UNICODE = "is not valid Unicode text (a lone UTF-16 surrogate)";

/**
 * The body parser: JSON.parse (V8's parser is iterative, and it makes `__proto__` an ordinary own
 * property instead of a prototype), then the checks above before schema validation sees the body.
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === "") throw new InvalidArgument("body", "must not be empty");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new InvalidArgument("body", "malformed JSON");
  }
  assertSafeJson(body);
  return body;
}

/**
 * The common case of a query string or path parameters, checked without building the walk's paths:
 * an object whose values are all strings, none of them or their names a lone surrogate or `__proto__`.
 * Anything else (or anything wrong) takes the full walk, which names the offending field.
 */
function isSafeFlatStrings(o: unknown): boolean {
  if (o === null || typeof o !== "object" || Array.isArray(o)) return false;
  for (const k in o) {
    if (!Object.hasOwn(o, k)) return false;
    const v = (o as Record<string, unknown>)[k];
    if (typeof v !== "string" || k === "__proto__" || LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) return false;
  }
  return true;
}
