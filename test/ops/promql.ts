/**
 * Just enough of PromQL to find what an expression reads: vector selectors (metric name and label
 * matchers) and the labels it groups or matches by. Not a validator: promtool checks the syntax.
 * Grafana variables (`$job`, `${job}`, `$__rate_interval`) are skipped.
 */
export interface Matcher {
  readonly label: string;
  readonly op: "=" | "!=" | "=~" | "!~";
  readonly value: string;
}

export interface Selector {
  readonly metric: string;
  readonly matchers: readonly Matcher[];
}

export interface PromqlRefs {
  readonly selectors: readonly Selector[];
  /** Labels named in by / without / on / ignoring / group_left / group_right. */
  readonly groupingLabels: readonly string[];
}

const GROUPING = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);
const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"]);
const AGGREGATIONS = new Set([
  "sum",
  "min",
  "max",
  "avg",
  "group",
  "stddev",
  "stdvar",
  "count",
  "count_values",
  "bottomk",
  "topk",
  "quantile",
  "limitk",
  "limit_ratio",
]);

export function promqlRefs(expr: string): PromqlRefs {
  const selectors: Selector[] = [];
  const groupingLabels: string[] = [];
  let i = 0;
  const n = expr.length;
  const isIdentStart = (c: string) => /[A-Za-z_:]/.test(c);
  const isIdent = (c: string) => /[A-Za-z0-9_:]/.test(c);
  const skipSpace = () => {
    while (i < n && /\s/.test(expr[i]!)) i++;
    if (expr[i] === "#") {
      while (i < n && expr[i] !== "\n") i++;
      skipSpace();
    }
  };
  const readString = (): string => {
    const quote = expr[i]!;
    let out = "";
    i++;
    while (i < n && expr[i] !== quote) {
      if (expr[i] === "\\" && quote !== "`") {
        out += expr[i + 1] ?? "";
        i += 2;
      } else out += expr[i++];
    }
    i++;
    return out;
  };
  const readIdent = (): string => {
    const s = i;
    while (i < n && isIdent(expr[i]!)) i++;
    return expr.slice(s, i);
  };
  const readMatchers = (): Matcher[] => {
    const out: Matcher[] = [];
    i++; // {
    for (;;) {
      skipSpace();
      if (expr[i] === "}") {
        i++;
        return out;
      }
      if (expr[i] === ",") {
        i++;
        continue;
      }
      const label = readIdent();
      if (label === "") throw new Error(`cannot read the label matchers in ${expr}`);
      skipSpace();
      const op = (["=~", "!~", "!=", "="] as const).find((o) => expr.startsWith(o, i));
      if (!op) throw new Error(`no matcher operator after ${label} in ${expr}`);
      i += op.length;
      skipSpace();
      out.push({ label, op, value: readString() });
    }
  };

  while (i < n) {
    const c = expr[i]!;
    if (c === '"' || c === "'" || c === "`") {
      readString();
    } else if (c === "$") {
      i++;
      if (expr[i] === "{") while (i < n && expr[i] !== "}") i++;
      else while (i < n && isIdent(expr[i]!)) i++;
      if (expr[i] === "}") i++;
    } else if (c === "[") {
      while (i < n && expr[i] !== "]") i++;
      i++;
    } else if (/[0-9.]/.test(c)) {
      while (i < n && /[0-9A-Za-z._]/.test(expr[i]!)) i++;
    } else if (c === "{") {
      const matchers = readMatchers();
      const name = matchers.find((m) => m.label === "__name__" && m.op === "=");
      if (!name) throw new Error(`a selector without a metric name in ${expr}`);
      selectors.push({ metric: name.value, matchers: matchers.filter((m) => m !== name) });
    } else if (isIdentStart(c)) {
      const word = readIdent();
      skipSpace();
      const lower = word.toLowerCase();
      if (GROUPING.has(lower)) {
        if (expr[i] === "(") {
          const close = expr.indexOf(")", i);
          for (const l of expr.slice(i + 1, close).split(",")) if (l.trim() !== "") groupingLabels.push(l.trim());
          i = close + 1;
        }
      } else if (KEYWORDS.has(lower) || AGGREGATIONS.has(lower) || expr[i] === "(") {
        // an operator, an aggregation or a function call: not a metric
      } else {
        selectors.push({ metric: word, matchers: expr[i] === "{" ? readMatchers() : [] });
      }
    } else {
      i++;
    }
  }
  return { selectors, groupingLabels };
}
