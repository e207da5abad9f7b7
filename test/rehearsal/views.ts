/**
 * Plays and the views they leave in reporting: steady traffic on keep-alive
 * connections (as an ingress controller sends it), and the count of a user's
 * views once the listener has nothing left to deliver, so "counted once" is
 * read when it can no longer change.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type ConnectionOptions } from '@nats-io/transport-node';
import { Pool } from 'undici';
import { PLAY_RETRYABLE_ERRORS } from '../../services/contracts/play';
import { STREAM } from '../../services/platform/events';
import { DURABLE } from '../../services/queue-listener/view-consumer';
import { waitFor } from '../../kit/wait';

export interface PlayOutcome {
  status: number;
  /** The answer's `recorded`, when it answered 200. */
  recorded: boolean | undefined;
  error: string | undefined;
}

export async function play(origin: string, assetId: string, userId: string): Promise<PlayOutcome> {
  const res = await fetch(`${origin}/play/asset/${assetId}/user/${userId}`, { method: 'POST', signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { recorded?: boolean };
  return { status: res.status, recorded: body.recorded, error: undefined };
}

export interface TrafficResult {
  sent: number;
  answered200: number;
  /** Every answer that was not a 200 (after the retries of retryable ones), and every request that got no answer. */
  failures: string[];
  recordedFalse: number;
  /** Answers 503 that the contract calls retryable (`overloaded`, `metadata_unavailable`) that were sent again, as a client does. */
  retried: number;
}

/**
 * A play answered with a retryable 503 (nothing done) is sent again this many times, this long apart, before it
 * counts as failed: a pod that keeps refusing for a second still fails the rollout.
 */
const RETRIES = 5;
const RETRY_AFTER_MS = 200;
function isRetryable(status: number, text: string): boolean {
  if (status !== 503) return false;
  try {
    return (PLAY_RETRYABLE_ERRORS as readonly unknown[]).includes((JSON.parse(text) as { error?: unknown }).error);
  } catch {
    return false; // not play's JSON error: a proxy's, or a broken answer
  }
}

/** Plays of asset 123 for `userId` at `ratePerSecond`, open loop, until `stop()`. */
export function steadyPlays(origin: string, userId: string, ratePerSecond: number): { stop(): Promise<TrafficResult> } {
  // Keep-alive connections, as Traefik keeps to its backends: a rolling update must not break those either.
  const pool = new Pool(origin, { connections: 8, pipelining: 1 });
  const result: TrafficResult = { sent: 0, answered200: 0, failures: [], recordedFalse: 0, retried: 0 };
  const inFlight = new Set<Promise<void>>();
  // Play sheds when its event loop lags (the chart's bound, 500 ms), and
  // answers metadata_unavailable when metadata misses play's deadline (450 ms):
  // on two cores shared with other suites both happen whatever the rollout
  // does (soak run 77: two plays in a row answered metadata_unavailable at a
  // load of 13-21). Either did nothing and says to try again: a client that does is
  // what the rollout must serve; one that does not, and failed, counts.
  const send = async (): Promise<{ status: number; text: string }> => {
    for (let attempt = 0; ; attempt++) {
      const res = await pool.request({ method: 'POST', path: `/play/asset/123/user/${userId}`, headersTimeout: 10_000, bodyTimeout: 10_000 });
      const text = await res.body.text();
      if (!isRetryable(res.statusCode, text) || attempt === RETRIES) return { status: res.statusCode, text };
      result.retried++;
      await new Promise((resolve) => setTimeout(resolve, RETRY_AFTER_MS));
    }
  };
  const fire = () => {
    result.sent++;
    const started = Date.now();
    const request = send()
      .then(({ status, text }) => {
        if (status === 200) {
          result.answered200++;
          if ((JSON.parse(text) as { recorded?: boolean }).recorded === false) result.recordedFalse++;
        } else {
          result.failures.push(`${new Date(started).toISOString()} ${status} ${text.slice(0, 120)}`);
        }
      })
      .catch((err: Error) => {
        result.failures.push(`${new Date(started).toISOString()} no answer: ${err.message}`);
      })
      .finally(() => inFlight.delete(request));
    inFlight.add(request);
  };
  const timer = setInterval(fire, 1000 / ratePerSecond);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
      await pool.close();
      return result;
    },
  };
}

async function viewsOf(reportingOrigin: string, userId: string): Promise<number> {
  const res = await fetch(`${reportingOrigin}/events/user/${userId}`, { signal: AbortSignal.timeout(5_000) });
  if (res.status === 404) return 0;
  if (res.status !== 200) throw new Error(`GET /events/user/${userId}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { views: number }).views;
}

/** Whether the listener's durable consumer has nothing left to deliver and nothing unacknowledged. */
async function consumerSettled(nats: ConnectionOptions): Promise<boolean> {
  const nc = await connect({ ...nats, timeout: 5_000 });
  try {
    const info = await (await jetstreamManager(nc)).consumers.info(STREAM, DURABLE);
    return info.num_pending === 0 && info.num_ack_pending === 0;
  } finally {
    await nc.close();
  }
}

/**
 * The user's views once at least `expected` are counted and the consumer has
 * settled: from then on a duplicate could no longer arrive, so the figure is final.
 */
export async function settledViews(reportingOrigin: string, nats: ConnectionOptions, userId: string, expected: number, timeoutMs = 30_000): Promise<number> {
  await waitFor(async () => (await viewsOf(reportingOrigin, userId)) >= expected && (await consumerSettled(nats)), {
    what: `${expected} views of ${userId} recorded and the listener's consumer settled`,
    timeoutMs,
    everyMs: 200,
  });
  return viewsOf(reportingOrigin, userId);
}
