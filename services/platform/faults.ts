import { trace } from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import { Counter, Gauge } from 'prom-client';
import { z } from 'zod';
import { EXAMPLE_ADMIN_TOKEN, adminTokenAuth } from './bearer-auth';
import { HttpError } from './errors';
import type { Logger } from './log';
import type { Metrics } from './metrics';
import { operation, type Operation, type OperationDoc } from './openapi';

/** Faults only some services have: play's failed publishes, queue-listener's pause. */
export type ServiceFaultKind = 'publishFailRate' | 'pause';

/** The `kind` label of faults_active and faults_injected_total. */
export type FaultMetricKind = 'delay' | 'error' | 'publish_fail' | 'pause';

export interface FaultSettings {
  /** Added before every business request is handled. */
  delayMs: number;
  /** A random 0..jitterMs added to delayMs. */
  jitterMs: number;
  /** Share of business requests answered 503 `fault_injected`. */
  errorRate: number;
  /** play: share of view publishes that fail, so the view goes through the outbox. */
  publishFailRate?: number;
  /** queue-listener: stop pulling view events. */
  pause?: boolean;
}

/** The 503 code of an injected error (docs/configuration.md). */
export const FAULT_INJECTED = 'fault_injected';
export const MAX_FAULT_DELAY_MS = 60_000;
export const FAULTS_PATH = '/admin/faults';

const delay = z.number().int().min(0).max(MAX_FAULT_DELAY_MS);
const share = z.number().min(0).max(1);
const OWNER: Record<ServiceFaultKind, string> = { publishFailRate: 'play', pause: 'queue-listener' };

/**
 * What `PUT /admin/faults` and `FAULTS` accept: unknown keys, values out of
 * range and the kinds of another service are refused; what is left out is off.
 */
export function faultSettingsSchema(kinds: readonly ServiceFaultKind[]): z.ZodType<FaultSettings, z.ZodTypeDef, unknown> {
  return z
    .object({
      delayMs: delay.default(0),
      jitterMs: delay.default(0),
      errorRate: share.default(0),
      publishFailRate: share.optional(),
      pause: z.boolean().optional(),
    })
    .strict()
    .superRefine((value, ctx) => {
      for (const kind of Object.keys(OWNER) as ServiceFaultKind[]) {
        if (value[kind] !== undefined && !kinds.includes(kind)) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: [kind], message: `is a fault of ${OWNER[kind]} only` });
        }
      }
    })
    .transform((value): FaultSettings => {
      const settings: FaultSettings = { delayMs: value.delayMs, jitterMs: value.jitterMs, errorRate: value.errorRate };
      if (kinds.includes('publishFailRate')) settings.publishFailRate = value.publishFailRate ?? 0;
      if (kinds.includes('pause')) settings.pause = value.pause ?? false;
      return settings;
    });
}

/** `FAULTS`: the same JSON as the PUT body, validated with the rest of the configuration. */
export function faultsConfigSchema(kinds: readonly ServiceFaultKind[]) {
  const settings = faultSettingsSchema(kinds);
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
      .pipe(settings)
      .optional(),
  });
}

/** Never slowed down or failed: probes, scrapes and the toggles themselves. */
const OPERATIONAL = /^\/(healthz|readyz|metrics)\/?$|^\/admin(\/|$)/;

export interface FaultsOptions {
  metrics: Metrics;
  log: Logger;
  /** The service's own kinds besides delay and errors. */
  kinds?: readonly ServiceFaultKind[];
  /** Where they start (FAULTS); all off when not given. */
  initial?: FaultSettings | undefined;
  /** Guards the admin routes (the admin token). */
  guard: RequestHandler;
}

/**
 * Fault toggles of one process: the settings, the middleware that applies
 * delay and errors to business routes, the admin routes that change them, and
 * the hooks services read for their own kinds. All off, the middleware is one
 * property check.
 */
export class Faults {
  readonly kinds: readonly ServiceFaultKind[];
  readonly guard: RequestHandler;
  private current: FaultSettings;
  /** Delay or errors set: the only thing the middleware reads when all is off. */
  private onRequests = false;
  /** What a PUT body must be, for this service's kinds. */
  readonly schema: z.ZodType<FaultSettings, z.ZodTypeDef, unknown>;
  private readonly listeners = new Set<(settings: FaultSettings) => void>();
  private readonly active: Gauge<'kind'>;
  private readonly injected: Counter<'kind'>;
  private readonly log: Logger;

  constructor(options: FaultsOptions) {
    this.log = options.log;
    this.kinds = options.kinds ?? [];
    this.guard = options.guard;
    this.schema = faultSettingsSchema(this.kinds);
    const registers = [options.metrics.registry];
    this.active = new Gauge({ name: 'faults_active', help: '1 while a fault toggle of this kind is on (PUT /admin/faults)', labelNames: ['kind'] as const, registers });
    this.injected = new Counter({ name: 'faults_injected_total', help: 'Faults injected, by kind', labelNames: ['kind'] as const, registers });
    // Every series exists from the start: dashboards show 0, increase() sees the first one.
    for (const kind of this.metricKinds()) {
      this.active.set({ kind }, 0);
      if (kind !== 'pause') this.injected.inc({ kind }, 0);
    }
    this.current = this.schema.parse({});
    if (options.initial) this.set(options.initial);
  }

  get settings(): FaultSettings {
    return { ...this.current };
  }

  set(settings: FaultSettings): void {
    this.current = { ...settings };
    // Loud on purpose: whoever reads the logs of a slow or failing service must see why.
    this.log.warn({ faults: this.settings }, 'fault toggles set');
    this.onRequests = settings.delayMs > 0 || settings.jitterMs > 0 || settings.errorRate > 0;
    this.active.set({ kind: 'delay' }, settings.delayMs > 0 || settings.jitterMs > 0 ? 1 : 0);
    this.active.set({ kind: 'error' }, settings.errorRate > 0 ? 1 : 0);
    if (settings.publishFailRate !== undefined) this.active.set({ kind: 'publish_fail' }, settings.publishFailRate > 0 ? 1 : 0);
    if (settings.pause !== undefined) this.active.set({ kind: 'pause' }, settings.pause ? 1 : 0);
    for (const listener of this.listeners) listener(this.settings);
  }

  reset(): void {
    this.set(this.schema.parse({}));
  }

  /** Calls `listener` now and after every change; returns the unsubscribe. */
  watch(listener: (settings: FaultSettings) => void): () => void {
    this.listeners.add(listener);
    listener(this.settings);
    return () => this.listeners.delete(listener);
  }

  /** play: whether this publish is to fail (counted when it does). */
  failPublish(): boolean {
    const rate = this.current.publishFailRate;
    if (!rate || Math.random() >= rate) return false;
    this.injected.inc({ kind: 'publish_fail' });
    return true;
  }

  /** Applies delay and errors to every request that reaches it; mounted before the business routes. */
  readonly middleware: RequestHandler = (req, _res, next) => {
    if (!this.onRequests || OPERATIONAL.test(req.path)) {
      next();
      return;
    }
    const { delayMs, jitterMs, errorRate } = this.current;
    const waitMs = delayMs + (jitterMs > 0 ? Math.floor(Math.random() * (jitterMs + 1)) : 0);
    const fail = errorRate > 0 && Math.random() < errorRate;
    // The server span says why it was slow or failed: a trace never passes a fault off as a real one.
    const span = trace.getActiveSpan();
    const answer = () => {
      if (!fail) {
        next();
        return;
      }
      this.injected.inc({ kind: 'error' });
      span?.addEvent('fault injected', { 'fault.kind': 'error' });
      span?.setAttribute('fault.injected', true);
      next(new HttpError(503, FAULT_INJECTED, 'a fault toggle answered this request with 503 (see /admin/faults)'));
    };
    if (waitMs === 0) {
      answer();
      return;
    }
    this.injected.inc({ kind: 'delay' });
    span?.addEvent('fault injected', { 'fault.kind': 'delay', 'fault.delay_ms': waitMs });
    span?.setAttribute('fault.injected', true);
    setTimeout(answer, waitMs);
  };

  private metricKinds(): FaultMetricKind[] {
    return [
      'delay',
      'error',
      ...(this.kinds.includes('publishFailRate') ? (['publish_fail'] as const) : []),
      ...(this.kinds.includes('pause') ? (['pause'] as const) : []),
    ];
  }
}

const settingsAnswer = z
  .object({ delayMs: delay, jitterMs: delay, errorRate: share, publishFailRate: share.optional(), pause: z.boolean().optional() })
  .strict();

/** `GET`, `PUT` and `DELETE /admin/faults`, behind the admin token, as the OpenAPI document shows them. */
export function faultOperations(faults: Faults): Operation[] {
  const auth = adminTokenAuth(faults.guard);
  const admin = { Authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` };
  const ok = { description: 'The fault toggles now in force', schema: settingsAnswer };
  return [
    operation({
      method: 'get',
      path: FAULTS_PATH,
      summary: 'Read the fault toggles',
      auth,
      ok,
      examples: [
        { name: 'read', summary: 'the toggles', headers: admin, status: 200 },
        { name: 'noToken', summary: 'without the admin token', status: 401 },
      ],
      async handle() {
        return faults.settings;
      },
    }),
    operation({
      method: 'put',
      path: FAULTS_PATH,
      summary: 'Set the fault toggles: what is left out is off',
      description: "Delay and errors apply to business routes only; publishFailRate is play's, pause is queue-listener's.",
      body: faults.schema,
      auth,
      ok,
      examples: [
        { name: 'delay', summary: 'slow every business request down', headers: admin, body: { delayMs: 20, jitterMs: 10 }, status: 200 },
        { name: 'outOfRange', summary: 'an error rate above 1', headers: admin, body: { errorRate: 2 }, status: 400 },
      ],
      async handle({ body }) {
        faults.set(body);
        return faults.settings;
      },
    }),
    operation({
      method: 'delete',
      path: FAULTS_PATH,
      summary: 'Turn every fault toggle off',
      auth,
      ok,
      examples: [{ name: 'reset', summary: 'all off', headers: admin, status: 200 }],
      async handle() {
        faults.reset();
        return faults.settings;
      },
    }),
  ];
}

/** The same operation, documented with the `503 fault_injected` a fault toggle can answer it with. */
export function withInjectedFaults<O extends OperationDoc>(op: O): O {
  return { ...op, errors: { ...op.errors, 503: [...(op.errors?.[503] ?? []), FAULT_INJECTED] } };
}
