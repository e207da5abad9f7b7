/**
 * A Consul HTTP double: a test stand-in for one Consul agent (dev mode, one
 * node), implementing only the endpoints video-mesh uses, with their
 * documented behaviour. It is not Consul; no Consul binary can be installed
 * where the tests run.
 *
 * - PUT /v1/agent/service/register: body `{ID, Name, Address, Port, Tags, Meta,
 *   Check: {CheckID, Name, HTTP, Method, Interval, Timeout,
 *   FailuresBeforeCritical, DeregisterCriticalServiceAfter, Status}}`. The
 *   check starts `critical` unless `Status` is given; the double runs the HTTP
 *   check itself at its interval, like an agent: 2xx passing, 429 warning,
 *   anything else or no answer within `Timeout` a failure, which turns it
 *   critical once `FailuresBeforeCritical` came in a row. A service whose
 *   check stays critical longer than `DeregisterCriticalServiceAfter` is
 *   removed. Re-registering an
 *   ID replaces the definition and keeps the check's status.
 * - PUT /v1/agent/service/deregister/:id (404 for an unknown id).
 * - GET /v1/agent/services: the agent's services by ID, with `filter`
 *   understood only in the form `ID == "<id>"` or `Service == "<name>"` (400
 *   for anything else); anonymous reads are filtered to nothing, as Consul does.
 * - GET /v1/health/service/:name with `passing`, `index` and `wait` (blocking
 *   queries: the answer comes when the service's index passes `index`, or when
 *   `wait` — default 5m, at most 10m, plus up to wait/16 of jitter — runs out),
 *   `X-Consul-Index` on every answer. Entries are `{Node, Service, Checks}`,
 *   the node's `serfHealth` check included.
 * - ACLs when `aclToken` is given: the token comes in `X-Consul-Token`,
 *   `Authorization: Bearer` or `?token=`. An unknown token is `403 ACL not
 *   found`; no token (anonymous) is `403 Permission denied` on agent endpoints
 *   and an empty, filtered answer (`X-Consul-Results-Filtered-By-ACLs: true`)
 *   on the health endpoint, as Consul filters reads rather than refusing them.
 * - `stop()` / `restart()`: the agent goes away and comes back on the same port
 *   with no services (no persisted state) and its index starting over.
 */
import { EventEmitter, once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type CheckStatus = 'passing' | 'warning' | 'critical';

interface RegisteredCheck {
  CheckID: string;
  Name: string;
  HTTP: string;
  Method: string;
  Interval: string;
  Timeout: string;
  /** Failed runs in a row before the check turns critical (Consul's default, 0, turns it at the first). */
  FailuresBeforeCritical: number;
  DeregisterCriticalServiceAfter: string;
}

export interface RegisteredService {
  ID: string;
  Name: string;
  Address: string;
  Port: number;
  Tags: string[];
  Meta: Record<string, string>;
  Check: RegisteredCheck | undefined;
}

interface ServiceState {
  definition: RegisteredService;
  status: CheckStatus;
  output: string;
  criticalSince: number | undefined;
  timer: NodeJS.Timeout | undefined;
  checkRuns: number;
  /** Failed runs since the last good one. */
  failuresInARow: number;
}

export interface RecordedRequest {
  at: number;
  method: string;
  path: string;
  query: Record<string, string>;
  token: string | undefined;
  status: number;
  body: unknown;
}

export interface ConsulDoubleOptions {
  /** When set, ACLs are on and this is the only valid token. */
  aclToken?: string;
  port?: number;
  /** Where to listen: 127.0.0.1 unless given (`::1` to test an IPv6 address). */
  host?: string;
}

const NODE = { ID: '0c8d6f5e-5e8c-4b0a-9b5e-000000000001', Node: 'double-node', Address: '127.0.0.1', Datacenter: 'dc1', TaggedAddresses: null, Meta: {} };
const MAX_WAIT_MS = 10 * 60_000;
const DEFAULT_WAIT_MS = 5 * 60_000;

/** Go duration syntax, as Consul parses it ("10s", "1m30s", "1500ms"). */
export function parseGoDuration(text: string): number | undefined {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (text === '0') return 0;
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = part.exec(text); m; m = part.exec(text)) {
    total += Number(m[1]) * (units[m[2] ?? ''] ?? NaN);
    consumed = part.lastIndex;
  }
  return consumed === text.length && consumed > 0 && Number.isFinite(total) ? total : undefined;
}

export class ConsulDouble {
  readonly requests: RecordedRequest[] = [];
  private readonly services = new Map<string, ServiceState>();
  /** Per service name, the index at which its entries last changed. */
  private readonly serviceIndex = new Map<string, number>();
  private readonly changes = new EventEmitter();
  private index = 1;
  private server: Server | undefined;
  private port = 0;

  private constructor(private readonly options: ConsulDoubleOptions) {
    this.changes.setMaxListeners(0);
  }

  static async start(options: ConsulDoubleOptions = {}): Promise<ConsulDouble> {
    const double = new ConsulDouble(options);
    await double.listen(options.port ?? 0);
    return double;
  }

  /** `host:port`, the form CONSUL_HTTP_ADDR takes. */
  get address(): string {
    const host = this.options.host ?? '127.0.0.1';
    return `${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  get url(): string {
    return `http://${this.address}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  service(id: string): (RegisteredService & { status: CheckStatus; checkRuns: number; criticalSince: number | undefined }) | undefined {
    const state = this.services.get(id);
    return state && { ...state.definition, status: state.status, checkRuns: state.checkRuns, criticalSince: state.criticalSince };
  }

  serviceIds(name?: string): string[] {
    return [...this.services.values()].filter((s) => !name || s.definition.Name === name).map((s) => s.definition.ID);
  }

  /** As an agent crash: connections cut, every check timer stopped, state gone. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const state of this.services.values()) clearTimeout(state.timer);
    this.services.clear();
    this.serviceIndex.clear();
    this.changes.emit('stop');
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  /** An agent restarted without persisted services: same port, empty catalogue, index from 1. */
  async restart(): Promise<void> {
    await this.stop();
    this.index = 1;
    await this.listen(this.port);
  }

  /** The `X-Consul-Index` a health query for this service answers now. */
  indexOf(name: string): number {
    return this.serviceIndex.get(name) ?? 1;
  }

  /**
   * As after a snapshot restore on the servers: the index goes backwards while
   * connections stay up. Blocked queries are answered with the lower index.
   */
  rewindIndex(): void {
    this.index = 1;
    for (const name of this.serviceIndex.keys()) this.serviceIndex.set(name, 1);
    for (const name of this.serviceIndex.keys()) this.changes.emit('change', name, true);
  }

  private async listen(port: number): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 65_000;
    server.listen(port, this.options.host ?? '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  private bump(name: string): void {
    this.index += 1;
    this.serviceIndex.set(name, this.index);
    this.changes.emit('change', name);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://double');
    const query = Object.fromEntries(url.searchParams);
    const record: RecordedRequest = {
      at: Date.now(),
      method: req.method ?? '',
      path: url.pathname,
      query,
      token: tokenOf(req, url),
      status: 0,
      body: undefined,
    };
    this.requests.push(record);
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      if (res.destroyed) return;
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', ...headers });
      res.end(text);
    };
    try {
      const raw = await readBody(req);
      if (raw) record.body = JSON.parse(raw) as unknown;
      const acl = this.aclFor(record.token);
      if (acl === 'unknown') return reply(403, 'ACL not found');

      const path = url.pathname;
      if (path === '/v1/agent/service/register') {
        if (req.method !== 'PUT') return reply(405, `method ${req.method} not allowed`);
        if (acl === 'anonymous') return reply(403, "Permission denied: anonymous token lacks permission 'service:write'");
        return this.register(record.body, reply);
      }
      const deregister = /^\/v1\/agent\/service\/deregister\/(.+)$/.exec(path);
      if (deregister) {
        if (req.method !== 'PUT') return reply(405, `method ${req.method} not allowed`);
        if (acl === 'anonymous') return reply(403, "Permission denied: anonymous token lacks permission 'service:write'");
        const id = decodeURIComponent(deregister[1] ?? '');
        const state = this.services.get(id);
        if (!state) return reply(404, `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`);
        this.remove(state);
        return reply(200, '');
      }
      if (path === '/v1/agent/services' && req.method === 'GET') {
        return this.agentServices(url.searchParams.get('filter'), acl === 'anonymous', reply);
      }
      const health = /^\/v1\/health\/service\/(.+)$/.exec(path);
      if (health && req.method === 'GET') {
        return await this.health(decodeURIComponent(health[1] ?? ''), url.searchParams, acl === 'anonymous', req, reply);
      }
      return reply(404, `no handler for ${req.method} ${path}`);
    } catch (err) {
      return reply(400, `Request decode failed: ${String(err)}`);
    }
  }

  private agentServices(filter: string | null, anonymous: boolean, reply: (status: number, body: unknown, headers?: Record<string, string>) => void): void {
    let keep = (_: RegisteredService) => true;
    if (filter !== null) {
      const m = /^\s*(ID|Service)\s*==\s*"([^"\\]*)"\s*$/.exec(filter);
      if (!m) return reply(400, `Failed to create boolean expression evaluator: the double understands only ID or Service == "...": ${filter}`);
      const [, field, value] = m;
      keep = (d) => (field === 'ID' ? d.ID : d.Name) === value;
    }
    if (anonymous) return reply(200, {}, { 'X-Consul-Results-Filtered-By-ACLs': 'true' });
    const entries = [...this.services.values()]
      .map((s) => s.definition)
      .filter(keep)
      .map((d) => [
        d.ID,
        {
          ID: d.ID,
          Service: d.Name,
          Tags: d.Tags,
          Meta: d.Meta,
          Port: d.Port,
          Address: d.Address,
          Weights: { Passing: 1, Warning: 1 },
          EnableTagOverride: false,
          Datacenter: 'dc1',
        },
      ]);
    return reply(200, Object.fromEntries(entries));
  }

  private aclFor(token: string | undefined): 'allowed' | 'anonymous' | 'unknown' {
    if (this.options.aclToken === undefined) return 'allowed';
    if (token === undefined || token === '') return 'anonymous';
    return token === this.options.aclToken ? 'allowed' : 'unknown';
  }

  private register(body: unknown, reply: (status: number, body: unknown) => void): void {
    if (typeof body !== 'object' || body === null) return reply(400, 'Request decode failed: empty body');
    const b = body as Record<string, unknown>;
    const name = typeof b['Name'] === 'string' ? b['Name'] : '';
    if (!name) return reply(400, 'Invalid Service Meta: Missing service name');
    const id = typeof b['ID'] === 'string' && b['ID'] ? b['ID'] : name;
    const rawCheck = b['Check'] as Record<string, unknown> | undefined;
    let check: RegisteredCheck | undefined;
    let initialStatus: CheckStatus = 'critical';
    if (rawCheck) {
      const interval = typeof rawCheck['Interval'] === 'string' ? parseGoDuration(rawCheck['Interval']) : undefined;
      if (typeof rawCheck['HTTP'] !== 'string' || !interval) return reply(400, 'Invalid check: HTTP and Interval are required');
      check = {
        CheckID: typeof rawCheck['CheckID'] === 'string' ? rawCheck['CheckID'] : `service:${id}`,
        Name: typeof rawCheck['Name'] === 'string' ? rawCheck['Name'] : `Service '${name}' check`,
        HTTP: rawCheck['HTTP'],
        Method: typeof rawCheck['Method'] === 'string' ? rawCheck['Method'] : 'GET',
        Interval: String(rawCheck['Interval']),
        Timeout: typeof rawCheck['Timeout'] === 'string' ? rawCheck['Timeout'] : '10s',
        FailuresBeforeCritical: typeof rawCheck['FailuresBeforeCritical'] === 'number' ? rawCheck['FailuresBeforeCritical'] : 0,
        DeregisterCriticalServiceAfter: typeof rawCheck['DeregisterCriticalServiceAfter'] === 'string' ? rawCheck['DeregisterCriticalServiceAfter'] : '',
      };
      const status = rawCheck['Status'];
      if (status === 'passing' || status === 'warning' || status === 'critical') initialStatus = status;
    } else {
      initialStatus = 'passing'; // no checks: the service is as healthy as its node
    }
    const definition: RegisteredService = {
      ID: id,
      Name: name,
      Address: typeof b['Address'] === 'string' ? b['Address'] : '',
      Port: typeof b['Port'] === 'number' ? b['Port'] : 0,
      Tags: Array.isArray(b['Tags']) ? (b['Tags'] as unknown[]).map(String) : [],
      Meta: typeof b['Meta'] === 'object' && b['Meta'] !== null ? (b['Meta'] as Record<string, string>) : {},
      Check: check,
    };
    const existing = this.services.get(id);
    if (existing) clearTimeout(existing.timer);
    const state: ServiceState = {
      definition,
      status: existing && !rawCheck?.['Status'] ? existing.status : initialStatus,
      output: '',
      criticalSince: undefined,
      timer: undefined,
      checkRuns: 0,
      failuresInARow: 0,
    };
    if (state.status === 'critical') state.criticalSince = existing?.criticalSince ?? Date.now();
    this.services.set(id, state);
    if (existing && existing.definition.Name !== name) this.bump(existing.definition.Name);
    this.bump(name);
    if (check) this.scheduleCheck(state, Math.random() * (parseGoDuration(check.Interval) ?? 1000));
    reply(200, '');
  }

  private remove(state: ServiceState): void {
    clearTimeout(state.timer);
    state.timer = undefined;
    if (this.services.get(state.definition.ID) !== state) return;
    this.services.delete(state.definition.ID);
    this.bump(state.definition.Name);
  }

  /** Like an agent: the first run is staggered randomly within the interval, then one per interval. */
  private scheduleCheck(state: ServiceState, delayMs: number): void {
    state.timer = setTimeout(() => void this.runCheck(state), delayMs);
  }

  private async runCheck(state: ServiceState): Promise<void> {
    const check = state.definition.Check;
    if (!check || this.services.get(state.definition.ID) !== state) return;
    const status = await probe(check.HTTP, check.Method, parseGoDuration(check.Timeout) ?? 10_000);
    if (this.services.get(state.definition.ID) !== state) return;
    state.checkRuns += 1;
    state.failuresInARow = status === 'critical' ? state.failuresInARow + 1 : 0;
    // As the agent's status handler: a failure short of the threshold leaves the status as it was.
    if (status === 'critical' && state.failuresInARow < check.FailuresBeforeCritical) {
      this.scheduleCheck(state, parseGoDuration(check.Interval) ?? 10_000);
      return;
    }
    if (status !== state.status) {
      state.status = status;
      state.criticalSince = status === 'critical' ? Date.now() : undefined;
      this.bump(state.definition.Name);
    }
    const reapAfter = parseGoDuration(check.DeregisterCriticalServiceAfter);
    if (reapAfter && state.criticalSince !== undefined && Date.now() - state.criticalSince >= reapAfter) {
      this.remove(state);
      return;
    }
    this.scheduleCheck(state, parseGoDuration(check.Interval) ?? 10_000);
  }

  private async health(
    name: string,
    params: URLSearchParams,
    anonymous: boolean,
    req: IncomingMessage,
    reply: (status: number, body: unknown, headers?: Record<string, string>) => void,
  ): Promise<void> {
    const requested = Number(params.get('index') ?? '0');
    const waitParam = params.get('wait');
    const wait = Math.min(waitParam ? (parseGoDuration(waitParam) ?? DEFAULT_WAIT_MS) : DEFAULT_WAIT_MS, MAX_WAIT_MS);
    const current = () => this.serviceIndex.get(name) ?? 1;
    if (requested > 0 && current() <= requested) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.changes.off('change', onChange);
          this.changes.off('stop', done);
          req.off('close', done);
          resolve();
        };
        const onChange = (changed: string, rewound = false) => {
          if (changed === name && (rewound || current() > requested)) done();
        };
        const timer = setTimeout(done, wait + Math.random() * (wait / 16));
        this.changes.on('change', onChange);
        this.changes.on('stop', done);
        req.on('close', done);
      });
    }
    const passingOnly = params.has('passing') && params.get('passing') !== 'false';
    const headers: Record<string, string> = { 'X-Consul-Index': String(current()), 'X-Consul-KnownLeader': 'true', 'X-Consul-LastContact': '0' };
    if (anonymous) return reply(200, [], { ...headers, 'X-Consul-Results-Filtered-By-ACLs': 'true' });
    const entries = [...this.services.values()]
      .filter((s) => s.definition.Name === name)
      .filter((s) => !passingOnly || s.status === 'passing')
      .map((s) => ({
        Node: NODE,
        Service: {
          ID: s.definition.ID,
          Service: s.definition.Name,
          Tags: s.definition.Tags,
          Address: s.definition.Address,
          Meta: s.definition.Meta,
          Port: s.definition.Port,
          Weights: { Passing: 1, Warning: 1 },
          EnableTagOverride: false,
        },
        Checks: [
          {
            Node: NODE.Node,
            CheckID: 'serfHealth',
            Name: 'Serf Health Status',
            Status: 'passing',
            Notes: '',
            Output: 'Agent alive and reachable',
            ServiceID: '',
            ServiceName: '',
          },
          ...(s.definition.Check
            ? [
                {
                  Node: NODE.Node,
                  CheckID: s.definition.Check.CheckID,
                  Name: s.definition.Check.Name,
                  Status: s.status,
                  Notes: '',
                  Output: s.output,
                  ServiceID: s.definition.ID,
                  ServiceName: s.definition.Name,
                },
              ]
            : []),
        ],
      }));
    return reply(200, entries, headers);
  }
}

function tokenOf(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers['x-consul-token'];
  if (typeof header === 'string' && header) return header;
  const auth = req.headers['authorization'];
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice('Bearer '.length);
  return url.searchParams.get('token') ?? undefined;
}

async function readBody(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return text;
}

/** The agent's HTTP check: 2xx passing, 429 warning, anything else critical. */
function probe(target: string, method: string, timeoutMs: number): Promise<CheckStatus> {
  return new Promise((resolve) => {
    const req = httpRequest(target, { method, timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 300 ? 'passing' : code === 429 ? 'warning' : 'critical');
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve('critical'));
    req.end();
  });
}
