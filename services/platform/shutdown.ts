import { setTimeout as sleep } from 'node:timers/promises';
import type { Readiness } from './health';
import type { Logger } from './log';

export interface ShutdownStep {
  name: string;
  run(): Promise<void> | void;
}

export interface ShutdownPlan {
  log: Logger;
  readiness: Readiness;
  /** Run at once, while readiness fails (deregistration). */
  first: ShutdownStep[];
  /** How long load balancers get to notice the failing readiness. */
  drainDelayMs: number;
  /** Run in order after the delay: stop HTTP, drain NATS, flush telemetry. */
  then: ShutdownStep[];
  timeoutMs: number;
}

/**
 * The order Kubernetes and Consul both rely on: fail readiness and leave the
 * catalogue, wait for load balancers to notice, finish in-flight work, drain,
 * flush. Resolves true when everything finished within the bound.
 */
export async function shutDown(plan: ShutdownPlan): Promise<boolean> {
  const started = Date.now();
  plan.readiness.startDraining();
  const sequence = (async () => {
    await Promise.all(plan.first.map((step) => runStep(step, plan.log)));
    if (plan.drainDelayMs > 0) await sleep(plan.drainDelayMs);
    for (const step of plan.then) await runStep(step, plan.log);
    return true;
  })();
  // A referenced timer: a hung step must still end in a timeout verdict, not a silent exit.
  const cancelBound = new AbortController();
  const bound = sleep(plan.timeoutMs, false, { signal: cancelBound.signal }).catch(() => false);
  const finished = await Promise.race([sequence, bound]);
  cancelBound.abort();
  plan.log.info({ durationMs: Date.now() - started, finished }, finished ? 'shutdown complete' : 'shutdown timed out');
  return finished;
}

async function runStep(step: ShutdownStep, log: Logger): Promise<void> {
  try {
    await step.run();
  } catch (err) {
    // One failing step must not keep the others from running.
    log.warn({ err, step: step.name }, 'shutdown step failed');
  }
}
