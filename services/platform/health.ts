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
