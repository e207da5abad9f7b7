import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import { SERVICE_NAMES } from '../contracts/services';

/** Beside the compiled console (dist/services/console) in a checkout: observability/scenarios.yml. */
export const DEFAULT_SCENARIOS_FILE = resolve(__dirname, '..', '..', '..', 'observability', 'scenarios.yml');

/** What the console reads of a scenario: the fault it sets, and its answer key. */
const scenarioSchema = z.object({
  name: z.string(),
  title: z.string(),
  action: z.object({ fault: z.object({ service: z.enum(SERVICE_NAMES), settings: z.record(z.union([z.number(), z.boolean()])) }).optional() }),
  play: z.string(),
  answer: z.record(z.unknown()),
  alerts: z.array(z.object({ name: z.string() })),
});
export type FaultScenario = z.infer<typeof scenarioSchema> & { action: { fault: NonNullable<z.infer<typeof scenarioSchema>['action']['fault']> } };

/**
 * The fault scenarios of "Break it yourself" with their answer keys, or
 * why there are none: the file is in a checkout, not in the image, and
 * `yaml` is a development dependency. The switches work without them.
 */
export async function loadFaultScenarios(file: string): Promise<{ scenarios: FaultScenario[] } | { missing: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { missing: `${file} is not here (it is in the repository: observability/scenarios.yml)` };
  }
  let yaml: { parse(text: string): unknown };
  try {
    yaml = await import('yaml');
  } catch {
    return { missing: 'the yaml package is not installed (a development dependency)' };
  }
  const parsed = z.object({ scenarios: z.array(z.unknown()) }).parse(yaml.parse(text));
  // Signals (NATS or Postgres stopped) are not switches: only the fault toggles are.
  const scenarios = parsed.scenarios.flatMap((raw) => {
    const scenario = scenarioSchema.safeParse(raw);
    return scenario.success && scenario.data.action.fault ? [scenario.data as FaultScenario] : [];
  });
  return { scenarios };
}
