/**
 * A Deployment's pod replaced as the Deployment controller replaces it on
 * `kubectl rollout restart`: a new pod from the template (with the
 * restartedAt annotation, so a new pod-template-hash) started beside the old
 * one as maxSurge allows, and once it is ready (and minReadySeconds later)
 * the old pod deleted: out of the endpoints, SIGTERM, SIGKILL after the
 * rendered grace period.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from './cluster';

export interface RollingUpdateResult {
  oldPod: string;
  newPod: string;
  /** From the new pod's start to its readiness. */
  newReadyMs: number;
  graceSeconds: number;
  /** The old pod's containers' exit codes after SIGTERM, and how long they took to end. */
  oldExitCodes: number[];
  oldStopMs: number;
}

class RolloutError extends Error {
  override name = 'RolloutError';
}

/** A rolling update's maxSurge or maxUnavailable for `replicas` pods: an integer or a percentage (surge rounds up, unavailable down). */
export function rolloutAllowance(value: number | string | undefined, replicas: number, fallback: string, roundUp: boolean): number {
  const text = String(value ?? fallback);
  const percent = /^(\d+)%$/.exec(text);
  if (!percent) return Number(text);
  const exact = (Number(percent[1]) * replicas) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

export async function rollingRestart(cluster: Cluster, deployment: string, readyDeadlineMs: number): Promise<RollingUpdateResult> {
  const d = cluster.deployment(deployment);
  if (d.spec.strategy.type !== 'RollingUpdate')
    throw new RolloutError(`Deployment ${deployment} uses ${d.spec.strategy.type}: every pod goes before the new one starts`);
  const surge = rolloutAllowance(d.spec.strategy.rollingUpdate?.maxSurge, d.spec.replicas, '25%', true);
  const unavailable = rolloutAllowance(d.spec.strategy.rollingUpdate?.maxUnavailable, d.spec.replicas, '25%', false);
  if (surge < 1) {
    throw new RolloutError(`Deployment ${deployment}: maxSurge ${surge} with maxUnavailable ${unavailable} deletes the old pod before the new one is ready`);
  }
  const old = cluster.current.get(deployment);
  if (!old) throw new RolloutError(`Deployment ${deployment} has no running pod`);
  const started = Date.now();
  const fresh = await cluster.startSurgePod(deployment, { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() });
  await fresh.whenReady(readyDeadlineMs);
  const newReadyMs = Date.now() - started;
  if (d.spec.minReadySeconds > 0) await sleep(d.spec.minReadySeconds * 1000);
  cluster.current.set(deployment, fresh);
  const graceSeconds = old.plan.terminationGracePeriodSeconds;
  const stopped = await old.terminate(graceSeconds);
  return { oldPod: old.name, newPod: fresh.name, newReadyMs, graceSeconds, oldExitCodes: stopped.exitCodes, oldStopMs: stopped.ms };
}
