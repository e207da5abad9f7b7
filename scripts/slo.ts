/**
 * Generates the SLO rules from the SLO spec (Sloth's prometheus/v1 format),
 * offline and deterministically, with Sloth's rule names so dashboards and
 * queries written for Sloth work on ours.
 *
 *   npm run slo                       write charts/video-mesh/rules/video-mesh.slos.rules.yml
 *   npm run slo -- --check            exit 1 when that file is not what the spec generates
 *   npm run slo -- --time-scale 60    every window divided by 60 (tests: 5m becomes 5s)
 *   npm run slo -- --out FILE         write FILE instead (- for stdout)
 *
 * Exit codes: 0 done, 1 the checked-in file differs (--check), 2 a usage error.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { numberFrom, readCommandLine, runCommand, UsageError } from './args';

const root = resolve(__dirname, '..', '..');
export const SPEC_FILE = join(root, 'charts/video-mesh/rules/video-mesh.slos.yml');
export const RULES_FILE = join(root, 'charts/video-mesh/rules/video-mesh.slos.rules.yml');

const labels = z.record(z.string(), z.string());
const alertSpec = z.object({ labels: labels.default({}), annotations: labels.default({}), disable: z.boolean().default(false) }).strict();
const sloSpec = z
  .object({
    name: z.string().regex(/^[a-z0-9-]+$/),
    objective: z.number().gt(0).lt(100),
    description: z.string().optional(),
    labels: labels.default({}),
    sli: z.object({ events: z.object({ error_query: z.string(), total_query: z.string() }).strict() }).strict(),
    alerting: z
      .object({
        name: z.string().regex(/^[A-Za-z][A-Za-z0-9]*$/),
        labels: labels.default({}),
        annotations: labels.default({}),
        page_alert: alertSpec,
        ticket_alert: alertSpec,
      })
      .strict(),
  })
  .strict();
const specSchema = z.object({ version: z.literal('prometheus/v1'), service: z.string(), labels: labels.default({}), slos: z.array(sloSpec).min(1) }).strict();
export type SloSpec = z.infer<typeof specSchema>;

/** The SLI windows of the burn-rate alerts, in seconds; the budget's 30-day period is PERIOD. */
const WINDOWS = { '5m': 300, '30m': 1800, '1h': 3600, '2h': 7200, '6h': 21600, '1d': 86400, '3d': 259200 } as const;
type Window = keyof typeof WINDOWS;
const PERIOD = { name: '30d', seconds: 30 * 86400, days: 30 };

/** The multiwindow multi-burn-rate alerts of the SRE workbook: each fires when both windows burn faster than the factor. */
const BURN_ALERTS: { severity: 'page' | 'ticket'; pairs: { factor: number; long: Window; short: Window }[] }[] = [
  {
    severity: 'page',
    pairs: [
      { factor: 14.4, long: '1h', short: '5m' },
      { factor: 6, long: '6h', short: '30m' },
    ],
  },
  {
    severity: 'ticket',
    pairs: [
      { factor: 3, long: '1d', short: '2h' },
      { factor: 1, long: '3d', short: '6h' },
    ],
  },
];

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleGroup {
  name: string;
  interval?: string;
  rules: Rule[];
}

/** A Prometheus duration of `seconds` (whole units where they fit, else milliseconds). */
export function promDuration(seconds: number): string {
  const ms = Math.round(seconds * 1000);
  if (ms <= 0) throw new Error(`a duration must be positive, got ${seconds}s`);
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Seconds of a Prometheus duration such as 90s, 5m, 1h30m or 2500ms. */
export function durationSeconds(text: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) throw new Error(`not a Prometheus duration: ${JSON.stringify(text)}`);
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * (units[unit ?? 's'] ?? 1), 0);
}

/** `text` with every range selector (`[5m]`, `[1h:1m]`) and `offset` divided by `scale`. */
export function scaleDurationsIn(text: string, scale: number): string {
  const scaled = (d: string) => promDuration(durationSeconds(d) / scale);
  return text
    .replace(/\[(\d+(?:ms|[smhdwy])+)(:(\d+(?:ms|[smhdwy])+)?)?\]/g, (_m, range: string, colon?: string, step?: string) =>
      colon === undefined ? `[${scaled(range)}]` : `[${scaled(range)}:${step === undefined ? '' : scaled(step)}]`,
    )
    .replace(/offset (\d+(?:ms|[smhdwy])+)/g, (_m, d: string) => `offset ${scaled(d)}`);
}

/** Rule groups with every window, `for` and offset divided by `scale`: what tests load to see hours pass in seconds. */
export function scaleRuleGroups(groups: readonly RuleGroup[], scale: number): RuleGroup[] {
  return groups.map((group) => ({
    ...group,
    rules: group.rules.map((rule) => ({
      ...rule,
      expr: scaleDurationsIn(rule.expr, scale),
      ...(rule.for === undefined ? {} : { for: promDuration(durationSeconds(rule.for) / scale) }),
    })),
  }));
}

export function readSpec(text: string): SloSpec {
  const parsed = specSchema.safeParse(parseYaml(text));
  if (!parsed.success) throw new Error(`the SLO spec is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** 100 - objective as a ratio, without the float noise of 1 - 0.999. */
const budgetOf = (objective: number): number => Number(((100 - objective) / 100).toPrecision(12));
const oneLine = (query: string): string => query.replace(/\s+/g, ' ').trim();

export function generate(spec: SloSpec, scale = 1): RuleGroup[] {
  const groups: RuleGroup[] = [];
  for (const slo of spec.slos) {
    const id = `${spec.service}-${slo.name}`;
    const sloth = { sloth_id: id, sloth_service: spec.service, sloth_slo: slo.name };
    const common = { ...spec.labels, ...slo.labels };
    const selector = `sloth_id="${id}", sloth_service="${spec.service}", sloth_slo="${slo.name}"`;
    const budget = budgetOf(slo.objective);
    const window = (seconds: number) => promDuration(seconds / scale);
    const query = (q: string, seconds: number) => oneLine(q).replaceAll('{{.window}}', window(seconds));

    const sli: Rule[] = Object.entries(WINDOWS).map(([name, seconds]) => ({
      record: `slo:sli_error:ratio_rate${name}`,
      expr: `(${query(slo.sli.events.error_query, seconds)})\n/\n(${query(slo.sli.events.total_query, seconds)})\n`,
      labels: { ...common, ...sloth, sloth_window: name },
    }));
    // As Sloth does: the period's ratio is the mean of the 5m ratios, so a month of raw samples is never read at once.
    sli.push({
      record: `slo:sli_error:ratio_rate${PERIOD.name}`,
      expr: `sum_over_time(slo:sli_error:ratio_rate5m{${selector}}[${window(PERIOD.seconds)}])\n/ ignoring (sloth_window)\ncount_over_time(slo:sli_error:ratio_rate5m{${selector}}[${window(PERIOD.seconds)}])\n`,
      labels: { ...common, ...sloth, sloth_window: PERIOD.name },
    });
    groups.push({ name: `sloth-slo-sli-recordings-${id}`, rules: sli });

    const meta: Rule[] = [
      { record: 'slo:objective:ratio', expr: `vector(${slo.objective / 100})`, labels: { ...common, ...sloth } },
      { record: 'slo:error_budget:ratio', expr: `vector(${budget})`, labels: { ...common, ...sloth } },
      { record: 'slo:time_period:days', expr: `vector(${PERIOD.days})`, labels: { ...common, ...sloth } },
      {
        record: 'slo:current_burn_rate:ratio',
        expr: `slo:sli_error:ratio_rate5m{${selector}}\n/ on (sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{${selector}}\n`,
        labels: { ...common, ...sloth },
      },
      {
        record: 'slo:period_burn_rate:ratio',
        expr: `slo:sli_error:ratio_rate${PERIOD.name}{${selector}}\n/ on (sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{${selector}}\n`,
        labels: { ...common, ...sloth },
      },
      {
        record: 'slo:period_error_budget_remaining:ratio',
        expr: `1 - slo:period_burn_rate:ratio{${selector}}`,
        labels: { ...common, ...sloth },
      },
      {
        record: 'sloth_slo_info',
        expr: 'vector(1)',
        labels: {
          ...common,
          ...sloth,
          sloth_mode: 'cli-gen-prom',
          sloth_objective: String(slo.objective),
          sloth_spec: spec.version,
          sloth_version: 'video-mesh-slo',
        },
      },
    ];
    groups.push({ name: `sloth-slo-meta-recordings-${id}`, rules: meta });

    const alerts: Rule[] = [];
    for (const { severity, pairs } of BURN_ALERTS) {
      const spec = severity === 'page' ? slo.alerting.page_alert : slo.alerting.ticket_alert;
      if (spec.disable) continue;
      const over = (w: Window, factor: number) => `max(slo:sli_error:ratio_rate${w}{${selector}} > (${factor} * ${budget})) without (sloth_window)`;
      const expr = pairs.map(({ factor, long, short }) => `(\n    ${over(short, factor)}\n  and\n    ${over(long, factor)}\n)`).join('\nor\n');
      alerts.push({
        alert: slo.alerting.name,
        expr: `${expr}\n`,
        labels: { ...slo.alerting.labels, ...spec.labels, sloth_severity: severity },
        annotations: {
          title: `(${severity}) {{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is too fast.`,
          ...slo.alerting.annotations,
          ...spec.annotations,
        },
      });
    }
    groups.push({ name: `sloth-slo-alerts-${id}`, rules: alerts });
  }
  return groups;
}

const HEADER = `# Generated by \`npm run slo\` (scripts/slo.ts) from video-mesh.slos.yml: do not edit.
# Sloth's rule names (slo:sli_error:ratio_rate5m, slo:period_error_budget_remaining:ratio, ...).
`;

export function render(groups: readonly RuleGroup[], scale = 1): string {
  const note = scale === 1 ? '' : `# Time scale ${scale}: every window divided by ${scale}, for tests only.\n`;
  return `${HEADER}${note}${stringifyYaml({ groups }, { lineWidth: 0 })}`;
}

export interface Options {
  check: boolean;
  scale: number;
  out: string;
}

export const USAGE = `usage: npm run slo -- [--check] [--time-scale N] [--out FILE]

Generates the SLO recording and alerting rules from charts/video-mesh/rules/video-mesh.slos.yml.

options:
  --check          compare with the checked-in rules instead of writing them (exit 1 when they differ)
  --time-scale N   divide every window by N (1-3600; tests compress hours into seconds)
  --out FILE       write FILE (- for stdout) instead of charts/video-mesh/rules/video-mesh.slos.rules.yml
  -h, --help       this text

exit codes: 0 done, 1 the rules differ (--check), 2 usage error`;

export function parseArgs(argv: readonly string[]): Options | undefined {
  // --check is a switch; the shared parser reads flags with values.
  const check = argv.includes('--check');
  const line = readCommandLine(
    argv.filter((arg) => arg !== '--check'),
    { 'time-scale': { default: '1' }, out: {} },
  );
  if (!line) return undefined;
  const scale = numberFrom(line.flags['time-scale'], { min: 1, max: 3600 });
  if (check && (scale !== 1 || line.flags.out !== undefined)) throw new UsageError('--check compares the shipped rules: give it no --time-scale or --out');
  return { check, scale, out: line.flags.out?.value ?? RULES_FILE };
}

export function run(options: Options, io: { out(text: string): void; err(text: string): void }): number {
  const text = render(generate(readSpec(readFileSync(SPEC_FILE, 'utf8')), options.scale), options.scale);
  if (options.check) {
    if (readFileSync(RULES_FILE, 'utf8') === text) return 0;
    io.err(`slo: ${RULES_FILE} is not what the spec generates: run npm run slo\n`);
    return 1;
  }
  if (options.out === '-') io.out(text);
  else writeFileSync(options.out, text);
  return 0;
}

if (require.main === module) {
  runCommand({
    name: 'slo',
    usage: USAGE,
    parse: parseArgs,
    run: (options) => Promise.resolve(run(options, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) })),
  });
}
