/**
 * Writes docs/configuration.md from the zod schemas that validate each
 * service's environment: every variable with its default, range and the
 * description declared beside it, the rules between variables, and the fault
 * kinds. `npm run config-doc` rewrites it; a test fails when the file and the
 * schemas differ.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z, type ZodTypeAny } from 'zod';
import { urlCatalog } from '../services/cdnurl/routes';
import { metadataCatalog } from '../services/metadata/routes';
import { catalogConfigRules, catalogConfigSchema } from '../services/platform/catalog-config';
import type { ConfigRule } from '../services/platform/config';
import type { FaultKind } from '../services/platform/faults-config';
import * as play from '../services/play/config';
import * as listener from '../services/queue-listener/config';
import * as reporting from '../services/reporting/config';

interface ServiceConfig {
  name: string;
  schema: z.AnyZodObject;
  rules: ReadonlyArray<ConfigRule<never>>;
  faultKinds: readonly FaultKind[];
}

/** Every service, in the order the docs name them. */
export const SERVICE_CONFIGS: readonly ServiceConfig[] = [
  { name: 'metadata', schema: catalogConfigSchema(metadataCatalog.name, metadataCatalog.port), rules: catalogConfigRules, faultKinds: [] },
  { name: 'cdnurl', schema: catalogConfigSchema(urlCatalog.name, urlCatalog.port), rules: catalogConfigRules, faultKinds: [] },
  { name: 'reporting', schema: reporting.configSchema, rules: reporting.configRules, faultKinds: reporting.faultKinds },
  { name: 'play', schema: play.configSchema, rules: play.configRules, faultKinds: play.faultKinds },
  { name: 'queue-listener', schema: listener.configSchema, rules: listener.configRules, faultKinds: listener.faultKinds },
];

interface Setting {
  description: string;
  defaultValue: unknown;
  range: string | undefined;
}

/** What a variable's schema says of it, through the wrappers zod puts around it (default, optional, transform, pipe). */
function settingOf(variable: string, schema: ZodTypeAny): Setting {
  const description = schema.description;
  if (!description) throw new Error(`${variable} has no description: add .describe() where it is declared`);
  let defaultValue: unknown;
  let range: string | undefined;
  for (let inner: ZodTypeAny | undefined = schema; inner;) {
    if (inner instanceof z.ZodDefault) defaultValue ??= (inner._def as { defaultValue: () => unknown }).defaultValue();
    if (inner instanceof z.ZodEnum) range = (inner.options as string[]).map((v) => `\`${v}\``).join(', ');
    if (inner instanceof z.ZodNumber && inner.minValue !== null && inner.maxValue !== null) range = `${inner.minValue}-${inner.maxValue}`;
    inner =
      inner instanceof z.ZodDefault || inner instanceof z.ZodOptional
        ? (inner._def.innerType as ZodTypeAny)
        : inner instanceof z.ZodEffects
          ? (inner._def.schema as ZodTypeAny)
          : inner instanceof z.ZodPipeline
            ? (inner._def.in as ZodTypeAny)
            : undefined;
  }
  return { description, defaultValue, range };
}

const listOf = (names: readonly string[]) => (names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} and ${names.at(-1)!}`);
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const shownDefault = (value: unknown) => (value === undefined ? 'unset' : `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``);

interface Row {
  variable: string;
  description: string;
  range: string | undefined;
  defaults: Map<string, unknown>;
}

/** One row per variable and description: a variable every service reads alike is one row, with its default per service where they differ. */
function rowsOf(configs: readonly ServiceConfig[]): Row[] {
  const rows = new Map<string, Row>();
  for (const { name, schema } of configs) {
    for (const [variable, field] of Object.entries(schema.shape as Record<string, ZodTypeAny>)) {
      const setting = settingOf(variable, field);
      const key = `${variable}\u0000${setting.description}`;
      const row = rows.get(key) ?? { variable, description: setting.description, range: setting.range, defaults: new Map() };
      row.defaults.set(name, setting.defaultValue);
      rows.set(key, row);
    }
  }
  return [...rows.values()];
}

function defaultCell(row: Row): string {
  const values = [...new Set([...row.defaults.values()].map(shownDefault))];
  if (values.length === 1) return values[0]!;
  return [...row.defaults].map(([service, value]) => `${service} ${shownDefault(value)}`).join(', ');
}

export function configurationDoc(configs: readonly ServiceConfig[] = SERVICE_CONFIGS): string {
  const names = configs.map((c) => c.name);
  const groups = new Map<string, Row[]>();
  for (const row of rowsOf(configs)) {
    const services = names.filter((n) => row.defaults.has(n));
    const heading = services.length === names.length ? 'Every service' : listOf(services);
    groups.set(heading, [...(groups.get(heading) ?? []), row]);
  }
  const variables = new Set(rowsOf(configs).map((r) => r.variable));
  const out: string[] = [
    '# Configuration',
    '',
    '<!-- Generated by `npm run config-doc` from the zod schemas in services/*/config.ts and',
    'services/platform; edit the descriptions there. A test fails when this file differs. -->',
    '',
    'Every service reads environment variables once at start-up and validates them;',
    'a bad value, or two values that break a rule between them, stops the service',
    'with one line naming the variables and exit code 78 (`EX_CONFIG`), which says',
    'that starting it again with the same environment cannot help. `./scripts/mesh`',
    'checks what each service would get against these same schemas before it starts',
    'anything, and stops with one message naming the variable you set; a service',
    'that still exits with 78 is not restarted. With no variables at all, the services',
    'run locally against each other, a local `nats-server` and the local',
    'PostgreSQL that `./scripts/mesh` starts.',
    '',
    'All five services run from one image: `node dist/services/<service>/main.js`',
    '(working directory `/app` in the image). What no operator would change is a',
    'named constant beside the code that uses it, not a variable: there are',
    `${variables.size} variables in all.`,
    '',
  ];
  for (const [heading, rows] of groups) {
    out.push(`## ${heading}`, '', '| variable | default | range | meaning |', '|---|---|---|---|');
    for (const row of rows) out.push(`| \`${row.variable}\` | ${cell(defaultCell(row))} | ${cell(row.range ?? '')} | ${cell(row.description)} |`);
    out.push('');
  }
  out.push('## Rules between settings', '', 'Checked at start, after each variable is valid on its own:', '');
  const rules = new Map<string, string[]>();
  for (const config of configs) for (const rule of config.rules) rules.set(rule.says, [...(rules.get(rule.says) ?? []), config.name]);
  for (const [says, services] of rules) out.push(`- ${says} (${services.length === names.length ? 'every service' : listOf(services)}).`);
  out.push('', ...FAULTS_SECTION);
  for (const config of configs) {
    for (const kind of config.faultKinds)
      out.push(`| \`${kind.key}\` | ${config.name} | ${kind.type === 'share' ? '0-1' : '`true`/`false`'} | ${cell(kind.description)} |`);
  }
  out.push('', ...FAULTS_AFTER);
  return `${out.join('\n')}\n`;
}

const FAULTS_SECTION = [
  '## Fault toggles',
  '',
  'With `FAULTS_ENABLED=true` (and `FAULTS_TOKEN`), a service serves `GET`, `PUT`',
  'and `DELETE /admin/faults` behind that token, to break it on purpose at run',
  'time: `npm run faults` flips them (README, "Break it yourself"). Without it the',
  'routes and the middleware do not exist. `./scripts/mesh` turns them on with',
  '`FAULTS_TOKEN`, or else the admin token it uses, and so does skaffold',
  '(`faults.enabled` of the chart); the chart leaves them off by default and in',
  "`values-production.yaml`. A `PUT` replaces the service's faults (what it leaves",
  'out is off) and answers the new state; `DELETE` turns every one off; `FAULTS`',
  'sets where they start.',
  '',
  '| fault | services | range | effect |',
  '|---|---|---|---|',
  '| `delayMs` | all | 0-60000 | each business request waits this long before it is handled |',
  '| `jitterMs` | all | 0-60000 | a random 0..`jitterMs` more |',
  '| `errorRate` | all | 0-1 | this share of business requests is answered `503` `{"error":"fault_injected","message":...}` |',
];

const FAULTS_AFTER = [
  'Business routes are everything but `/healthz`, `/readyz`, `/metrics` and',
  '`/admin/*`, which are never slowed down or failed. A value out of range, an',
  "unknown key or another service's fault is a `400` (`invalid_body`) and changes",
  "nothing. An injected delay or error is counted and logged as the service's",
  "own (its request metrics show it), and the request's server span carries a",
  '`fault injected` event and `fault.injected=true`, so a trace never passes a',
  'fault off as a real one. `faults_active{kind}` and',
  '`faults_injected_total{kind}` ([metrics.md](metrics.md)) say what is on; the',
  'overview dashboard marks the time it was, and `VideoMeshFaultsActive` fires',
  'when one has been on for a minute. With every fault off the request path costs',
  'one property check.',
];

if (require.main === module) {
  writeFileSync(join(__dirname, '..', '..', 'docs', 'configuration.md'), configurationDoc());
}
