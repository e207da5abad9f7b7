/**
 * What the fault toggles accept, as configuration (`FAULTS`) and as the body
 * of `PUT /admin/faults`: apart from the toggles themselves (faults.ts), so a
 * service's config schema can be read without loading its HTTP stack.
 */
import { z } from 'zod';

/**
 * A fault some services have besides delay and errors, declared in that
 * service's folder (play's failed publishes, queue-listener's pause): a share
 * of something that fails, or a switch.
 */
export interface FaultKind {
  /** Its key in `PUT /admin/faults` and `FAULTS`. */
  key: string;
  /** Its `kind` label on faults_active and faults_injected_total. */
  label: string;
  type: 'share' | 'switch';
  /** What it does, for the OpenAPI document. */
  description: string;
}

/** Delay and errors, which every service has, and the values of its own kinds by key. */
export interface FaultSettings {
  /** Added before every business request is handled. */
  delayMs: number;
  /** A random 0..jitterMs added to delayMs. */
  jitterMs: number;
  /** Share of business requests answered 503 `fault_injected`. */
  errorRate: number;
  [kind: string]: number | boolean;
}

const MAX_FAULT_DELAY_MS = 60_000;

/** A delay in ms, and a share of requests (0 to 1): the values of the toggles, for the schemas here and the OpenAPI document's. */
export const faultDelaySchema = z.number().int().min(0).max(MAX_FAULT_DELAY_MS);
export const faultShareSchema = z.number().min(0).max(1);
export const faultValueSchema = (kind: FaultKind) => (kind.type === 'share' ? faultShareSchema : z.boolean());
const offValue = (kind: FaultKind) => (kind.type === 'share' ? 0 : false);

/**
 * What `PUT /admin/faults` and `FAULTS` accept: unknown keys (another
 * service's kinds among them) and values out of range are refused; what is
 * left out is off.
 */
export function faultSettingsSchema(kinds: readonly FaultKind[]): z.ZodType<FaultSettings, z.ZodTypeDef, unknown> {
  const own = Object.fromEntries(kinds.map((kind) => [kind.key, faultValueSchema(kind).optional()]));
  return z
    .object({ delayMs: faultDelaySchema.default(0), jitterMs: faultDelaySchema.default(0), errorRate: faultShareSchema.default(0), ...own })
    .strict()
    .transform((value): FaultSettings => {
      const settings: FaultSettings = { delayMs: value.delayMs, jitterMs: value.jitterMs, errorRate: value.errorRate };
      for (const kind of kinds) settings[kind.key] = ((value as Record<string, unknown>)[kind.key] as number | boolean | undefined) ?? offValue(kind);
      return settings;
    });
}

/** `FAULTS`: the same JSON as the PUT body, validated with the rest of the configuration. */
export function faultsConfigSchema(kinds: readonly FaultKind[]) {
  return z.object({
    FAULTS: z
      .string()
      .transform((text, ctx) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be JSON, e.g. {"delayMs":200,"errorRate":0.1}' });
          return z.NEVER;
        }
      })
      .pipe(faultSettingsSchema(kinds))
      .optional()
      .describe(
        'With `FAULTS_ENABLED=true`, the fault toggles the service starts with: the JSON of a `PUT /admin/faults`, e.g. `{"delayMs":200,"errorRate":0.1}`; the chart sets it from `services.<name>.faults`.',
      ),
  });
}
