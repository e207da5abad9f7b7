/**
 * Every PromQL expression the repository ships — dashboard targets, dashboard
 * variable queries, alert rules — in a form Prometheus can run, so the
 * dashboards test checks their shape and the Prometheus test runs them.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { dashboardsDir, rulesFile, sloRulesFile } from './paths';

interface Target {
  refId?: unknown;
  expr?: unknown;
  datasource?: unknown;
  exemplar?: unknown;
}
export interface Panel {
  id?: unknown;
  type?: unknown;
  title?: unknown;
  datasource?: unknown;
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
}
export interface Variable {
  name?: unknown;
  type?: unknown;
  query?: unknown;
  definition?: unknown;
  datasource?: unknown;
  includeAll?: unknown;
  allValue?: unknown;
  multi?: unknown;
}
export interface Dashboard {
  file: string;
  uid?: unknown;
  title?: unknown;
  schemaVersion?: unknown;
  panels?: Panel[];
  templating?: { list?: Variable[] };
}

export interface PromqlExpression {
  /** Where it comes from, to name it in a failure: "video-mesh-overview.json › Play latency › B". */
  origin: string;
  /** As written in the file. */
  raw: string;
  /** Runnable: Grafana variables substituted. */
  expr: string;
}

export interface RuleExpression extends PromqlExpression {
  /** The alert's name, or the recorded series' name. */
  alert: string;
  kind: 'alert' | 'record';
  /**
   * The expression's operands with every threshold comparison and set operator
   * removed: what must return data on a running mesh for the alert to mean
   * anything, even while the alert itself is (rightly) silent.
   */
  dataExprs: string[];
}

/** What the Prometheus test substitutes for Grafana's variables. */
export interface Substitutions {
  namespace: string;
  service: string;
  rateInterval: string;
  interval: string;
  range: string;
}

export const allServices = ['play', 'metadata', 'cdnurl', 'reporting', 'queue-listener'] as const;

const defaultSubstitutions: Substitutions = {
  namespace: 'local',
  // What Grafana renders for a multi-value variable set to All without allValue.
  service: `(${allServices.join('|')})`,
  rateInterval: '1m',
  interval: '15s',
  range: '10m',
};

export function loadDashboards(dir: string = dashboardsDir()): Dashboard[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => ({ ...(JSON.parse(readFileSync(join(dir, name), 'utf8')) as Omit<Dashboard, 'file'>), file: name }));
}

/** Panels at any depth: rows of older schemas nest their panels. */
export function allPanels(dashboard: Dashboard): Panel[] {
  const walk = (panels: Panel[] | undefined): Panel[] => (panels ?? []).flatMap((panel) => [panel, ...walk(panel.panels)]);
  return walk(dashboard.panels);
}

export function substitute(expr: string, values: Substitutions = defaultSubstitutions): string {
  const table: Record<string, string> = {
    namespace: values.namespace,
    service: values.service,
    __rate_interval: values.rateInterval,
    __interval: values.interval,
    __range: values.range,
  };
  // $name, ${name}, ${name:format} and the deprecated [[name]].
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (whole, braced?: string, bracketed?: string, bare?: string) => {
    const name = braced ?? bracketed ?? bare ?? '';
    const value = table[name];
    if (value === undefined) throw new Error(`unknown Grafana variable ${whole} in: ${expr}`);
    return value;
  });
}

/**
 * A variable query `label_values(selector, label)` as the PromQL that lists
 * the same values, so the test proves the variable would not be empty.
 */
export function variableQueryAsPromql(query: string): string {
  const match = /^label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)$/s.exec(query.trim());
  if (match === null || match[1] === undefined || match[2] === undefined) {
    throw new Error(`unsupported variable query: ${query}`);
  }
  return `count by (${match[2]}) (${match[1]})`;
}

export function variableQueryText(variable: Variable): string | undefined {
  const query = variable.query;
  if (typeof query === 'string') return query;
  if (typeof query === 'object' && query !== null && 'query' in query && typeof query.query === 'string') return query.query;
  return undefined;
}

export function dashboardExpressions(values: Substitutions = defaultSubstitutions): PromqlExpression[] {
  return loadDashboards().flatMap((dashboard) => {
    const fromVariables = (dashboard.templating?.list ?? [])
      .filter((variable) => variable.type === 'query')
      .map((variable) => {
        const raw = variableQueryText(variable) ?? '';
        return { origin: `${dashboard.file} › variable ${String(variable.name)}`, raw, expr: substitute(variableQueryAsPromql(raw), values) };
      });
    const fromPanels = allPanels(dashboard).flatMap((panel) =>
      (panel.targets ?? []).map((target) => {
        const raw = typeof target.expr === 'string' ? target.expr : '';
        return { origin: `${dashboard.file} › ${String(panel.title)} › ${String(target.refId)}`, raw, expr: substitute(raw, values) };
      }),
    );
    return [...fromVariables, ...fromPanels];
  });
}

interface RuleFile {
  groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
}

/** The rules of the chart's cause alerts and of its generated SLO rules, or of the files given. */
export function ruleExpressions(files: readonly string[] = [rulesFile(), sloRulesFile()]): RuleExpression[] {
  const parsed = files.map((file) => parseYaml(readFileSync(file, 'utf8')) as RuleFile);
  return parsed
    .flatMap(({ groups }) => groups)
    .flatMap((group) =>
      group.rules.map((rule) => {
        const name = rule.alert ?? rule.record ?? '?';
        return {
          alert: name,
          kind: rule.alert === undefined ? ('record' as const) : ('alert' as const),
          origin: `rules › ${group.name} › ${name}`,
          raw: rule.expr,
          expr: rule.expr.trim(),
          dataExprs: comparisonOperands(rule.expr),
        };
      }),
    );
}

const comparison = /^(==|!=|>=|<=|>|<)/;
const setOperator = /^(and|or|unless)(?![A-Za-z0-9_:])/;
const leadingModifier = /^\s*(bool|(?:on|ignoring|group_left|group_right)\s*(\([^)]*\))?)\s*/;

/**
 * Splits an expression on its top-level comparisons and set operators
 * (`and`, `or`, `unless`), recursing into parentheses, and drops number
 * literals: `(a > 1000) and on (x) (deriv(a[10m]) > 0)` gives
 * `a` and `deriv(a[10m])`. Arithmetic is kept whole, joins included.
 */
export function comparisonOperands(expr: string): string[] {
  const trimmed = expr.trim();
  const inner = unwrapParentheses(trimmed);
  if (inner !== undefined) return comparisonOperands(inner);
  const parts = splitTopLevel(trimmed);
  if (parts.length === 1) return /^[+-]?[\d.]+(e[+-]?\d+)?$/i.test(trimmed) ? [] : [trimmed];
  return parts.flatMap((part) => comparisonOperands(stripModifiers(part)));
}

function stripModifiers(part: string): string {
  let rest = part;
  for (let match = leadingModifier.exec(rest); match !== null && match[0] !== ''; match = leadingModifier.exec(rest)) {
    rest = rest.slice(match[0].length);
  }
  return rest;
}

/** The content of `( ... )` when one pair of parentheses encloses the whole expression. */
function unwrapParentheses(expr: string): string | undefined {
  if (!expr.startsWith('(') || !expr.endsWith(')')) return undefined;
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < expr.length; i++) {
    const c = expr.charAt(i);
    if (quote !== undefined) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') quote = c;
    else if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth === 0 && i < expr.length - 1) return undefined;
    }
  }
  return expr.slice(1, -1);
}

function splitTopLevel(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr.charAt(i);
    if (quote !== undefined) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      quote = c;
      continue;
    }
    if (c === '(' || c === '{' || c === '[') {
      depth++;
      continue;
    }
    if (c === ')' || c === '}' || c === ']') {
      depth--;
      continue;
    }
    if (depth !== 0) continue;
    const rest = expr.slice(i);
    const previous = i === 0 ? ' ' : expr.charAt(i - 1);
    const op = comparison.exec(rest)?.[0] ?? (/[A-Za-z0-9_:]/.test(previous) ? undefined : setOperator.exec(rest)?.[0]);
    if (op === undefined) continue;
    parts.push(expr.slice(start, i));
    i += op.length - 1;
    start = i + 1;
  }
  parts.push(expr.slice(start));
  return parts.map((part) => part.trim()).filter((part) => part !== '');
}
