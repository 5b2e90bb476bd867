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
  const stack: Item[] = [{ value: root, parent: undefined, key: "", depth: 0 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { value, depth } = item;
    if (typeof value === "string") {
      if (LONE_SURROGATE.test(value)) throw new InvalidArgument(pathOf(item, rootPath) || "body", NOT_UNICODE);
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    if (depth >= MAX_JSON_DEPTH)
      throw new InvalidArgument(pathOf(item, rootPath) || "body", `nested deeper than ${MAX_JSON_DEPTH} levels`);
    // Pushed in reverse so the first offending field in document order is the one named.
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--)
        stack.push({ value: value[i], parent: item, key: i, depth: depth + 1 });
      continue;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i]!;
      const child: Item = { value: (value as Record<string, unknown>)[k], parent: item, key: k, depth: depth + 1 };
      if (k === "__proto__") throw new InvalidArgument(pathOf(child, rootPath), "is a forbidden property name");
      if (LONE_SURROGATE.test(k)) throw new InvalidArgument(pathOf(child, rootPath), NOT_UNICODE);
      stack.push(child);
    }
  }
}

/** A value met by the walk, with how it was reached: its path is built only to name it in an error. */
interface Item {
  readonly value: unknown;
  readonly parent: Item | undefined;
  /** Its index in the parent array, or its name in the parent object. */
  readonly key: string | number;
  readonly depth: number;
}

/** `a.b[2].c`, from the root's path: what the walk used to build for every value, now only on a refusal. */
function pathOf(item: Item, rootPath: string): string {
  const keys: (string | number)[] = [];
  for (let at: Item | undefined = item; at?.parent !== undefined; at = at.parent) keys.push(at.key);
  let path = rootPath;
  for (let i = keys.length - 1; i >= 0; i--) {
    const k = keys[i]!;
    path = typeof k === "number" ? `${path}[${k}]` : path === "" ? k : `${path}.${k}`;
  }
  return path;
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
