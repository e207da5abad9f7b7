/**
 * A container's probes polled as the kubelet's probe workers poll them: each
 * probe on its own ticker from the container's start (the first at once,
 * then every periodSeconds, after initialDelaySeconds), readiness and
 * liveness skipped until the startup probe has passed, and readiness probed
 * at once when it does (the kubelet's manual trigger of a readiness probe
 * with no result yet); HTTP 200-399 within
 * timeoutSeconds is a success, without keep-alive; readiness flips after
 * successThreshold successes or failureThreshold failures in a row; a
 * startup or liveness probe failing failureThreshold times in a row is where
 * the kubelet would kill the container: here it is a failure of the rehearsal.
 */
import { EventEmitter } from 'node:events';
import { request } from 'node:http';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProbePlan } from './pod-plan';

export type ProbeOutcome = { ok: true } | { ok: false; reason: string };

export function probeOnce(ip: string, probe: ProbePlan): Promise<ProbeOutcome> {
  const timeoutMs = probe.timeoutSeconds * 1000;
  return new Promise((resolve) => {
    if (probe.path === undefined) {
      const socket = connect({ host: ip, port: probe.port, timeout: timeoutMs });
      socket.once('connect', () => {
        socket.destroy();
        resolve({ ok: true });
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve({ ok: false, reason: `no connection to ${ip}:${probe.port} within ${timeoutMs} ms` });
      });
      socket.once('error', (err) => resolve({ ok: false, reason: err.message }));
      return;
    }
    const req = request(
      {
        host: ip,
        port: probe.port,
        path: probe.path,
        method: 'GET',
        agent: false,
        timeout: timeoutMs,
        headers: { 'User-Agent': 'kube-probe/rehearsal', Accept: '*/*', Connection: 'close', ...probe.headers },
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(status >= 200 && status < 400 ? { ok: true } : { ok: false, reason: `HTTP probe failed with statuscode: ${status}` });
      },
    );
    req.once('timeout', () => req.destroy(new Error(`GET ${probe.path} on ${ip}:${probe.port}: no answer within ${timeoutMs} ms`)));
    req.once('error', (err) => resolve({ ok: false, reason: err.message }));
    req.end();
  });
}

export interface ProbeFailure {
  kind: ProbePlan['kind'];
  at: number;
  message: string;
}

/** The probe state of one container; emits `change` when started or ready flips, and `failure`. */
export class ContainerProber extends EventEmitter {
  started: boolean;
  ready = false;
  readonly failures: ProbeFailure[] = [];
  /** Every probe that did not pass, thresholds aside: what a flapping pod shows before it is restarted or unready. */
  readonly misses: ProbeFailure[] = [];
  /** When the startup probe passed (ms since epoch). */
  startedAt: number | undefined;
  private readonly stopping = new AbortController();
  private readonly loops: Array<Promise<void>> = [];
  /** Set when the startup probe passes: readiness is probed at once, not at its next tick. */
  private readinessDue = false;
  private wakeReadiness: (() => void) | undefined;

  constructor(
    private readonly ip: string,
    private readonly probes: readonly ProbePlan[],
    private readonly containerStartedAt: number,
  ) {
    super();
    this.started = !probes.some((p) => p.kind === 'startup');
    if (this.started) this.startedAt = containerStartedAt;
    if (this.started && !probes.some((p) => p.kind === 'readiness')) this.markReady(true);
  }

  start(): void {
    for (const probe of this.probes) this.loops.push(this.run(probe));
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.loops);
  }

  private async run(probe: ProbePlan): Promise<void> {
    const period = probe.periodSeconds * 1000;
    let next = Date.now();
    let successes = 0;
    let failures = 0;
    for (;;) {
      const wait = next - Date.now();
      if (wait > 0 && !(probe.kind === 'readiness' && this.readinessDue)) {
        const woken = new AbortController();
        const stop = () => woken.abort();
        this.stopping.signal.addEventListener('abort', stop);
        if (probe.kind === 'readiness') this.wakeReadiness = stop;
        await sleep(wait, undefined, { signal: woken.signal }).catch(() => undefined);
        this.stopping.signal.removeEventListener('abort', stop);
        if (probe.kind === 'readiness') this.wakeReadiness = undefined;
      }
      if (this.stopping.signal.aborted) return;
      // A manual trigger probes now and leaves the ticker alone; a tick drops the ticks missed while a probe ran.
      const triggered = probe.kind === 'readiness' && this.readinessDue && Date.now() < next;
      if (probe.kind === 'readiness' && this.started) this.readinessDue = false;
      if (!triggered) {
        do next += period;
        while (next <= Date.now());
      }
      if (probe.kind !== 'startup' && !this.started) continue;
      if (Date.now() < this.containerStartedAt + probe.initialDelaySeconds * 1000) continue;
      const outcome = await probeOnce(this.ip, probe);
      if (this.stopping.signal.aborted) return;
      if (outcome.ok) {
        successes++;
        failures = 0;
      } else {
        failures++;
        successes = 0;
        this.misses.push({ kind: probe.kind, at: Date.now(), message: outcome.reason });
      }
      if (probe.kind === 'startup') {
        if (outcome.ok) {
          this.started = true;
          this.startedAt = Date.now();
          this.emit('change');
          this.readinessDue = true;
          this.wakeReadiness?.();
          if (!this.probes.some((p) => p.kind === 'readiness')) this.markReady(true);
          return;
        }
        if (failures >= probe.failureThreshold) {
          this.fail(probe.kind, `startup probe failed ${failures} times, the kubelet would kill the container: ${outcome.ok ? '' : outcome.reason}`);
          return;
        }
      } else if (probe.kind === 'readiness') {
        if (outcome.ok && successes >= probe.successThreshold) this.markReady(true);
        if (!outcome.ok && failures >= probe.failureThreshold) this.markReady(false);
      } else if (!outcome.ok && failures >= probe.failureThreshold) {
        this.fail(probe.kind, `liveness probe failed ${failures} times in a row, the kubelet would restart the container: ${outcome.reason}`);
        failures = 0;
      }
    }
  }

  private markReady(ready: boolean): void {
    if (this.ready === ready) return;
    this.ready = ready;
    this.emit('change');
  }

  private fail(kind: ProbePlan['kind'], message: string): void {
    const failure = { kind, at: Date.now(), message };
    this.failures.push(failure);
    this.emit('failure', failure);
  }
}
