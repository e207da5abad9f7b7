import { trace } from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import { Counter, Gauge } from 'prom-client';
import { z } from 'zod';
import { requireBearerToken } from './bearer-auth';
import { HttpError } from './errors';
import { faultDelaySchema, faultSettingsSchema, faultShareSchema, faultValueSchema, type FaultKind, type FaultSettings } from './faults-config';
import type { Logger } from './log';
import type { Metrics } from './metrics';
import { operation, type BearerAuth, type Operation, type OperationDoc } from './openapi';

const FAULTS_PATH = '/admin/faults';
/** The token the examples of the OpenAPI document send to /admin/faults. */
export const EXAMPLE_FAULTS_TOKEN = 'example-faults-token';

/** How the OpenAPI document names the routes behind FAULTS_TOKEN. */
export const faultsAuth = (token: string): BearerAuth => ({
  scheme: 'faultsToken',
  description: `FAULTS_TOKEN, which FAULTS_ENABLED=true requires. The examples send \`Bearer ${EXAMPLE_FAULTS_TOKEN}\`.`,
  optional: false,
  guard: requireBearerToken(token, 'the fault toggles', 'closed'),
});

/** Never slowed down or failed: probes, scrapes and the toggles themselves. */
const OPERATIONAL = /^\/(healthz|readyz|metrics)\/?$|^\/admin(\/|$)/;

export interface FaultsOptions {
  metrics: Metrics;
  log: Logger;
  /** The service's own kinds besides delay and errors. */
  kinds?: readonly FaultKind[];
  /** Where they start (FAULTS); all off when not given. */
  initial?: FaultSettings | undefined;
  /** Guards the admin routes (FAULTS_TOKEN). */
  auth: BearerAuth;
}

/**
 * Fault toggles of one process, present only when FAULTS_ENABLED=true: the
 * settings, the middleware that applies delay and errors to business routes,
 * the admin routes that change them, and the hooks services read for their
 * own kinds. All off, the middleware is one property check.
 */
export class Faults {
  readonly kinds: readonly FaultKind[];
  readonly auth: BearerAuth;
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
    this.auth = options.auth;
    this.schema = faultSettingsSchema(this.kinds);
    const registers = [options.metrics.registry];
    this.active = new Gauge({
      name: 'faults_active',
      help: '1 while a fault toggle of this kind is on (PUT /admin/faults)',
      labelNames: ['kind'] as const,
      registers,
    });
    const injectable = ['delay', 'error', ...this.kinds.filter((kind) => kind.type === 'share').map((kind) => kind.label)];
    this.injected = options.metrics.counterBy('faults_injected_total', 'Faults injected, by kind', 'kind', injectable);
    // Every series exists from the start: dashboards show 0.
    for (const label of ['delay', 'error', ...this.kinds.map((kind) => kind.label)]) this.active.set({ kind: label }, 0);
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
    for (const kind of this.kinds) this.active.set({ kind: kind.label }, settings[kind.key] ? 1 : 0);
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

  /** For a share kind: whether this one fails (counted when it does). */
  roll(kind: FaultKind): boolean {
    const rate = this.current[kind.key];
    if (typeof rate !== 'number' || rate === 0 || Math.random() >= rate) return false;
    this.injected.inc({ kind: kind.label });
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
      next(new HttpError('fault_injected', 'a fault toggle answered this request with 503 (see /admin/faults)'));
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

  /** `GET`, `PUT` and `DELETE /admin/faults`, behind FAULTS_TOKEN, as the OpenAPI document shows them. */
  operations(): Operation[] {
    const token = { Authorization: `Bearer ${EXAMPLE_FAULTS_TOKEN}` };
    const own = Object.fromEntries(this.kinds.map((kind) => [kind.key, faultValueSchema(kind).describe(kind.description)]));
    const ok = {
      description: 'The fault toggles now in force',
      schema: z.object({ delayMs: faultDelaySchema, jitterMs: faultDelaySchema, errorRate: faultShareSchema, ...own }).strict(),
    };
    const common = { path: FAULTS_PATH, auth: this.auth, ok };
    return [
      operation({
        ...common,
        method: 'get',
        summary: 'Read the fault toggles',
        examples: [
          { name: 'read', summary: 'the toggles', headers: token, status: 200 },
          { name: 'noToken', summary: 'without the faults token', status: 401 },
        ],
        handle: () => this.settings,
      }),
      operation({
        ...common,
        method: 'put',
        summary: 'Set the fault toggles: what is left out is off',
        description: 'Delay and errors apply to business routes only.',
        body: this.schema,
        examples: [
          { name: 'delay', summary: 'slow every business request down', headers: token, body: { delayMs: 20, jitterMs: 10 }, status: 200 },
          { name: 'outOfRange', summary: 'an error rate above 1', headers: token, body: { errorRate: 2 }, status: 400 },
        ],
        handle: ({ body }) => {
          this.set(body);
          return this.settings;
        },
      }),
      operation({
        ...common,
        method: 'delete',
        summary: 'Turn every fault toggle off',
        examples: [{ name: 'reset', summary: 'all off', headers: token, status: 200 }],
        handle: () => {
          this.reset();
          return this.settings;
        },
      }),
    ];
  }
}

/** The same operation, documented with the `503 fault_injected` a fault toggle can answer it with. */
export function withInjectedFaults<O extends OperationDoc>(op: O): O {
  return { ...op, errors: [...(op.errors ?? []), 'fault_injected'] };
}
