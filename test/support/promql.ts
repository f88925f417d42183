/**
 * Just enough PromQL lexing for lint-style checks on alert rules and dashboard queries: the vector
 * selectors of an expression (metric name and matchers) and the range functions with their
 * windows. Label lists (`by (…)`, `on (…)`), function names, keywords, numbers and strings are
 * told apart from metric names; anything more (a parse error) is promtool's job.
 */

export interface Selector {
  metric: string;
  /** The matchers inside `{…}`, e.g. `{job=~"$job",target!=""}`; `""` when there are none. */
  matchers: string;
}

export interface RangeCall {
  fn: string;
  /** The window inside `[…]` of its argument, e.g. `$__rate_interval`. */
  window: string;
  /** The metric the window applies to. */
  metric: string;
}

const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"]);
const OPERATORS = new Set(["and", "or", "unless"]);
const LABEL_LISTS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);
const AGGREGATORS = new Set([
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

/** The vector selectors of `expr`, in order. */
export function selectors(expr: string): Selector[] {
  return scan(expr).selectors;
}

/** Every `rate(…[w])`, `increase(…[w])` and other range function applied directly to a selector. */
export function rangeCalls(expr: string): RangeCall[] {
  return scan(expr).ranges;
}

function scan(expr: string): { selectors: Selector[]; ranges: RangeCall[] } {
  const found: Selector[] = [];
  const ranges: RangeCall[] = [];
  const calls: string[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < expr.length && /\s/.test(expr[i] ?? "")) i++;
  };
  const skipString = () => {
    const quote = expr[i];
    i++;
    while (i < expr.length && expr[i] !== quote) i += expr[i] === "\\" ? 2 : 1;
    i++;
  };
  const until = (close: string) => {
    const start = i;
    while (i < expr.length && expr[i] !== close) {
      if (expr[i] === '"' || expr[i] === "'") skipString();
      else i++;
    }
    i++;
    return expr.slice(start, i);
  };
  while (i < expr.length) {
    const c = expr[i] ?? "";
    if (c === '"' || c === "'" || c === "`") {
      skipString();
      continue;
    }
    if (c === "(") {
      calls.push("");
      i++;
      continue;
    }
    if (c === ")") {
      calls.pop();
      i++;
      continue;
    }
    if (c === "{") {
      // a selector without a metric name: {__name__=~"…"}
      found.push({ metric: "", matchers: until("}") });
      continue;
    }
    const word = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(expr.slice(i))?.[0];
    if (!word || /\d/.test(expr[i - 1] ?? "")) {
      i++;
      continue;
    }
    i += word.length;
    skipSpace();
    const next = expr[i];
    if (LABEL_LISTS.has(word) && next === "(") {
      until(")");
      continue;
    }
    if (KEYWORDS.has(word) || OPERATORS.has(word)) continue;
    if (AGGREGATORS.has(word)) {
      // `sum by (l) (…)`: the label list may come before the argument
      const clause = /^(by|without)\s*\(/.exec(expr.slice(i));
      if (clause) {
        i += clause[0].length;
        until(")");
        skipSpace();
      }
    }
    if (next === "(" || AGGREGATORS.has(word)) {
      if (expr[i] !== "(") continue;
      calls.push(word);
      i++;
      continue;
    }
    const selector: Selector = { metric: word, matchers: next === "{" ? until("}") : "" };
    found.push(selector);
    skipSpace();
    if (expr[i] === "[") {
      i++;
      const window = until("]").slice(0, -1);
      ranges.push({ fn: calls.at(-1) ?? "", window, metric: word });
    }
  }
  return { selectors: found, ranges };
}
