import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { startMesh, type Mesh } from '../../kit/mesh';
import { describeRequest, malformedRequest, SERVICES, type FuzzRequest, type FuzzService } from './malformed';

/** Fixed, so CI runs the same requests every time; FUZZ_SEED explores others (the seed is printed either way). */
const DEFAULT_SEED = 20_241_126;
const REQUESTS = Number(process.env['FUZZ_REQUESTS'] ?? 10_000);
/** Modest on purpose: play sheds load with 503 when saturated, which is not what this test looks for. */
const CONCURRENCY = 8;
const ADMIN_TOKEN = 'fuzz-admin-token-0123456789abcdef';

function seedFromEnv(): number {
  const raw = process.env['FUZZ_SEED'];
  if (raw === undefined || raw === '') return DEFAULT_SEED;
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`FUZZ_SEED must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return seed;
}

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

/** What is wrong with an answer, or undefined: no 5xx, and every 4xx is our JSON error (or the seed's 404 shape). */
function problemWith(req: FuzzRequest, answer: Answer): string | undefined {
  if (answer.status >= 500) return `answered ${answer.status}`;
  if (answer.status < 400) return undefined;
  if (!/^application\/json\b/.test(answer.contentType)) return `answered ${answer.status} as ${answer.contentType || 'no content type'}`;
  // HEAD answers carry the headers of the JSON error without its body.
  if (req.method === 'HEAD') return undefined;
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    return `answered ${answer.status} with a body that is not JSON`;
  }
  const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  if (typeof fields['error'] === 'string' && typeof fields['message'] === 'string') return undefined;
  if (answer.status === 404 && typeof fields['id'] === 'string' && typeof fields['status'] === 'string') return undefined;
  return `answered ${answer.status} without {error, message}`;
}

function table(counts: Map<FuzzService, Map<string, number>>): string {
  const statuses = [...new Set([...counts.values()].flatMap((m) => [...m.keys()]))].sort();
  const rows = SERVICES.map((service) => {
    const byStatus = counts.get(service) ?? new Map<string, number>();
    const total = [...byStatus.values()].reduce((a, b) => a + b, 0);
    return [service, String(total), ...statuses.map((s) => String(byStatus.get(s) ?? 0))];
  });
  const header = ['service', 'total', ...statuses];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

describe('malformed requests at scale, against a real mesh', () => {
  let mesh: Mesh;
  const pools = new Map<FuzzService, Pool>();
  const ports = new Map<FuzzService, number>();

  before(async () => {
    mesh = await startMesh({
      env: { LOG_LEVEL: 'warn' },
      envFor: {
        metadata: { ADMIN_TOKEN },
        cdnurl: { ADMIN_TOKEN },
        // One token for every guarded route, so the generator needs one: the record routes' too.
        reporting: { RECORD_TOKEN: ADMIN_TOKEN },
        'queue-listener': { RECORD_TOKEN: ADMIN_TOKEN },
        // Play sheds with 503 when its event loop lags, and answers 503 when metadata misses the
        // play's deadline; on two cores shared with another test file that is the machine, not these
        // 8 requests in flight. Shedding and deadlines have their own tests.
        play: { PLAY_DEADLINE_MS: '60000', SHED_EVENT_LOOP_DELAY_MS: '600000' },
      },
    });
    for (const service of SERVICES) {
      const { url, port } = mesh.services[service];
      ports.set(service, port);
      pools.set(service, new Pool(url, { connections: CONCURRENCY, headersTimeout: 10_000, bodyTimeout: 10_000 }));
    }
  });
  after(async () => {
    await Promise.all([...pools.values()].map((p) => p.close()));
    await mesh?.stop();
  });

  it('when the same seed is used twice, then the same requests are made', () => {
    for (const index of [0, 1, 777, 9_999]) {
      assert.deepEqual(malformedRequest(42, index, ADMIN_TOKEN), malformedRequest(42, index, ADMIN_TOKEN));
    }
    assert.notDeepEqual(malformedRequest(42, 5, ADMIN_TOKEN), malformedRequest(43, 5, ADMIN_TOKEN));
  });

  it(`when ${REQUESTS} malformed requests hit every route of every service, then none answers 5xx, every 4xx is JSON, and nothing crashes`, async () => {
    const seed = seedFromEnv();
    process.stdout.write(`fuzz seed ${seed} (set FUZZ_SEED to change it), ${REQUESTS} requests, concurrency ${CONCURRENCY}\n`);
    const counts = new Map<FuzzService, Map<string, number>>();
    const kinds = new Map<string, number>();
    const problems: string[] = [];
    let next = 0;
    const startedAt = Date.now();

    const send = async (req: FuzzRequest): Promise<Answer> => {
      const res = await pools.get(req.service)!.request({
        method: req.method,
        path: req.path,
        headers: req.headers,
        ...(req.body ? { body: req.body } : {}),
      });
      const body = await res.body.text();
      const contentType = res.headers['content-type'];
      return { status: res.statusCode, contentType: Array.isArray(contentType) ? contentType.join(',') : (contentType ?? ''), body };
    };
    const worker = async () => {
      while (next < REQUESTS) {
        const req = malformedRequest(seed, next++, ADMIN_TOKEN);
        kinds.set(req.kind, (kinds.get(req.kind) ?? 0) + 1);
        let key: string;
        try {
          const answer = await send(req);
          key = String(answer.status);
          const problem = problemWith(req, answer);
          if (problem) problems.push(`${problem}: ${describeRequest(req, ports.get(req.service)!)}\n    -> ${answer.body.slice(0, 300)}`);
        } catch (err) {
          key = 'error';
          problems.push(`no answer (${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}): ${describeRequest(req, ports.get(req.service)!)}`);
        }
        const byStatus = counts.get(req.service) ?? new Map<string, number>();
        byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
        counts.set(req.service, byStatus);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = (Date.now() - startedAt) / 1000;

    process.stdout.write(`${REQUESTS} requests in ${seconds.toFixed(1)} s (${Math.round(REQUESTS / seconds)}/s)\n${table(counts)}\n`);
    process.stdout.write(
      `by kind: ${[...kinds]
        .sort()
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}\n`,
    );
    for (const service of SERVICES) assert.ok((counts.get(service)?.size ?? 0) > 0, `${service} got requests`);

    const crashed = SERVICES.filter((s) => mesh.services[s].child.exitCode !== null || mesh.services[s].child.signalCode !== null);
    const unhealthy: string[] = [];
    for (const service of SERVICES) {
      for (const probe of ['/healthz', '/readyz']) {
        const status = await fetch(`${mesh.services[service].url}${probe}`).then(
          (r) => r.status,
          () => 0,
        );
        if (status !== 200) unhealthy.push(`${service}${probe} ${status}`);
      }
    }
    const report = [
      problems.length > 0 ? `${problems.length} bad answers (seed ${seed}); the first:\n  ${problems.slice(0, 15).join('\n  ')}` : '',
      crashed.length > 0 ? `crashed: ${crashed.map((s) => `${s}\n${mesh.services[s].output().slice(-2000)}`).join('\n')}` : '',
      unhealthy.length > 0 ? `not healthy or ready afterwards: ${unhealthy.join(', ')}` : '',
    ].filter(Boolean);
    assert.equal(report.length, 0, report.join('\n'));
  });
});
