import type { RequestListener } from 'node:http';

/**
 * Readiness is a set of named checks plus a draining flag that shutdown sets
 * first, so load balancers stop sending before the server stops accepting.
 * Checks are synchronous reads of state kept up to date elsewhere: a probe
 * must answer fast and can never hang on a peer.
 */
export class Readiness {
  private readonly checks = new Map<string, () => boolean>();
  private draining = false;

  addCheck(name: string, isReady: () => boolean): void {
    this.checks.set(name, isReady);
  }

  startDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  report(): { ready: boolean; checks: Record<string, boolean> } {
    const checks: Record<string, boolean> = { accepting: !this.draining };
    for (const [name, isReady] of this.checks) checks[name] = safely(isReady);
    return { ready: Object.values(checks).every(Boolean), checks };
  }
}

function safely(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

export interface ProbeAnswer {
  status: number;
  body: { status: string; checks?: Record<string, boolean> };
}

/** `/healthz`: the process works; never depends on another service. */
export const livenessAnswer = (): ProbeAnswer => ({ status: 200, body: { status: 'ok' } });

/** `/readyz`: every check passes and the service is not draining. */
export function readinessAnswer(readiness: Readiness): ProbeAnswer {
  const { ready, checks } = readiness.report();
  return { status: ready ? 200 : 503, body: { status: ready ? 'ready' : 'not ready', checks } };
}

/**
 * The kubelet's own listener (PROBE_PORT): `GET /healthz` and `GET /readyz`
 * answered as the service's app answers them, and nothing else. Its accept
 * queue is its own, so a flood of client connections on PORT cannot make a
 * probe wait behind them.
 */
export function probeListener(readiness: Readiness): RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer =
      req.method !== 'GET' && req.method !== 'HEAD'
        ? undefined
        : path === '/healthz'
          ? livenessAnswer()
          : path === '/readyz'
            ? readinessAnswer(readiness)
            : undefined;
    const { status, body } = answer ?? { status: 404, body: { error: 'not_found', message: `no route for ${req.method} ${path} on the probe port` } };
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
}
