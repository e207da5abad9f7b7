/// <reference lib="dom" />
/**
 * The console page: polls /api/state every second and draws the graph, the
 * tables, the switches and the SLOs; plays through /api/play and follows the
 * counts. A browser module compiled by the project's tsc (.mts: an ES
 * module), with type imports only, so it loads nothing else.
 */
import type { ConsoleState, EdgeView, Health, NodeName, NodeView, SwitchView } from '../view.js';

const POLL_MS = 1_000;
/** How long the counts are followed after a play: a view is recorded within a second or two. */
const FOLLOW_COUNTS_MS = 10_000;

const HEALTH_WORDS: Record<Health, string> = { ok: 'ok', idle: 'ok (idle)', degraded: 'degraded', failing: 'failing', down: 'down', unknown: 'unknown' };

/** Where each node sits in the 960 x 470 drawing: callers left, the broker below, the database right. */
const AT: Record<NodeName, { x: number; y: number }> = {
  play: { x: 110, y: 220 },
  metadata: { x: 430, y: 50 },
  cdnurl: { x: 430, y: 160 },
  reporting: { x: 430, y: 290 },
  nats: { x: 250, y: 420 },
  'queue-listener': { x: 640, y: 420 },
  postgres: { x: 820, y: 160 },
};

const SVG = 'http://www.w3.org/2000/svg';
const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function svg(tag: string, attrs: Record<string, string | number>, ...children: Array<Node | string>): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

async function api<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(path, init);
  const body = (await res.json()) as T & { message?: string };
  if (!res.ok) throw new Error(body.message ?? `${path} answered ${res.status}`);
  return body;
}

const edgeId = (e: EdgeView) => `${e.from}->${e.to}${e.kind === 'notices' ? ' (notices)' : ''}`;

function drawGraph(state: ConsoleState): void {
  const graph = byId<HTMLElement>('graph');
  const desc = graph.querySelector('desc');
  // One arrowhead per state, in its colour: the direction of a call is who calls whom.
  const markers = svg(
    'defs',
    {},
    ...(['ok', 'idle', 'degraded', 'failing', 'down', 'unknown'] as const).map((h) =>
      svg(
        'marker',
        { id: `arrow-${h}`, viewBox: '0 0 10 10', refX: 10, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 12, markerHeight: 12, orient: 'auto' },
        svg('path', { d: 'M0,0 L10,5 L0,10 z', class: `arrow ${h}` }),
      ),
    ),
  );
  graph.replaceChildren(...(desc ? [desc] : []), markers);
  for (const e of state.edges) {
    const a = AT[e.from];
    const to = AT[e.to];
    // Ends at the box's edge, not its centre, so the arrowhead shows.
    const b = towardsBox(a, to);
    // Bent a little to one side, so the two directions between NATS and a service stay apart;
    // the catalogs' notices the other way and further, around the boxes between them and NATS.
    const bend = e.kind === 'notices' && e.to === 'nats' ? -0.3 : 0.12;
    const mx = (a.x + b.x) / 2 + (b.y - a.y) * bend;
    const my = (a.y + b.y) / 2 - (b.x - a.x) * bend;
    const words = `${edgeId(e)} ${e.label}: ${HEALTH_WORDS[e.health]}; ${e.says.join(', ')}`;
    graph.append(
      svg(
        'g',
        { class: 'edge', 'data-edge': edgeId(e), 'data-health': e.health },
        svg('title', {}, words),
        svg('path', { d: `M${a.x},${a.y} Q${mx},${my} ${b.x},${b.y}`, class: e.health, 'marker-end': `url(#arrow-${e.health})` }),
        svg('text', { x: mx, y: my, 'text-anchor': 'middle' }, e.rate === null ? '' : `${e.rate.toFixed(1)}/s${e.health === 'failing' ? ' failing' : ''}`),
      ),
    );
  }
  for (const n of state.nodes) {
    const { x, y } = AT[n.name];
    graph.append(
      svg(
        'g',
        { class: 'node', 'data-node': n.name, 'data-health': n.health },
        svg('title', {}, `${n.name}: ${HEALTH_WORDS[n.health]}; ${n.says.join(', ')}`),
        svg('rect', { x: x - 70, y: y - 24, width: 140, height: 48, rx: 8, class: n.health }),
        svg('text', { x, y: y - 4, 'text-anchor': 'middle', 'font-weight': 600 }, n.name),
        svg('text', { x, y: y + 14, 'text-anchor': 'middle' }, HEALTH_WORDS[n.health]),
      ),
    );
  }
}

/** Where the line from `from` meets the 140 x 48 box around `to`. */
function towardsBox(from: { x: number; y: number }, to: { x: number; y: number }): { x: number; y: number } {
  const dx = from.x - to.x;
  const dy = from.y - to.y;
  const scale = Math.min(dx === 0 ? Infinity : 72 / Math.abs(dx), dy === 0 ? Infinity : 26 / Math.abs(dy));
  return { x: to.x + dx * scale, y: to.y + dy * scale };
}

function row(attrs: Record<string, string>, ...cells: Array<Node | string>): HTMLTableRowElement {
  return el('tr', attrs, ...cells.map((cell) => el('td', {}, cell)));
}

function drawTables(state: ConsoleState): void {
  byId('nodes')
    .querySelector('tbody')!
    .replaceChildren(
      ...state.nodes.map((n: NodeView) =>
        row({ 'data-node': n.name, 'data-health': n.health }, n.name, el('span', { class: 'health' }, HEALTH_WORDS[n.health]), n.says.join(', ')),
      ),
    );
  byId('edges')
    .querySelector('tbody')!
    .replaceChildren(
      ...state.edges.map((e) =>
        row(
          { 'data-edge': edgeId(e), 'data-health': e.health },
          `${e.from} → ${e.to}`,
          e.label,
          el('span', { class: 'health' }, HEALTH_WORDS[e.health]),
          e.says.join(', '),
        ),
      ),
    );
}

let switchesDrawn = '';
function drawSwitches(switches: SwitchView[] | null): void {
  if (switches === null) return;
  // Redrawn only when something changed, so a keyboard focus on a switch stays where it is.
  const drawn = JSON.stringify(switches);
  if (drawn === switchesDrawn) return;
  switchesDrawn = drawn;
  const focused = document.activeElement?.id;
  const control = (s: SwitchView) => {
    const button = el(
      'button',
      { type: 'button', id: `switch-${s.id}`, 'aria-pressed': String(s.on), 'data-switch': s.id },
      `${s.title}: ${s.on ? 'ON (press to turn off)' : 'off'}`,
    );
    button.addEventListener('click', () => void flip(s, button));
    const key = s.key
      ? el(
          'p',
          { class: 'key' },
          `${s.key.scenario}. Play answers: ${s.key.play} Alerts: ${s.key.alerts.join(', ') || 'none'}. Key: ${JSON.stringify(s.key.answer)}`,
        )
      : el('p', { class: 'key' }, 'No scenario of observability/scenarios.yml sets this one.');
    return el('div', { class: 'switch' }, button, key);
  };
  // The scenarios of "Break it yourself" first; the other toggles (and any that is on) after them.
  const scenarios = switches.filter((s) => s.key);
  const others = switches.filter((s) => !s.key);
  const more = el(
    'details',
    others.some((s) => s.on) ? { open: '' } : {},
    el('summary', {}, `The other fault toggles (${others.length})`),
    ...others.map(control),
  );
  byId('switches').replaceChildren(
    ...(scenarios.length === 0 ? [el('p', { class: 'note' }, 'No answer keys here: observability/scenarios.yml is in the repository.')] : []),
    ...scenarios.map(control),
    ...(others.length > 0 ? [more] : []),
  );
  if (focused) document.getElementById(focused)?.focus();
}

async function flip(s: SwitchView, button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  try {
    await api(`/api/switches/${encodeURIComponent(s.id)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ on: !s.on }),
    });
    say(`${s.title} turned ${s.on ? 'off' : 'on'}; the graph shows it within a few seconds.`);
  } catch (err) {
    say(`Could not flip ${s.title}: ${(err as Error).message}`);
  } finally {
    button.disabled = false;
  }
}

function drawSlo(slo: ConsoleState['slo']): void {
  if (slo.slos === null) {
    byId('slo').replaceChildren(el('p', { class: 'note' }, slo.source));
    return;
  }
  const table = el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'SLO'), el('th', {}, 'Error budget left'), el('th', {}, 'Burn rate'))));
  const pct = (v: number | null) => (v === null ? 'no data' : `${(v * 100).toFixed(1)}%`);
  table.append(el('tbody', {}, ...slo.slos.map((s) => row({}, s.name, pct(s.budgetLeft), s.burnRate === null ? 'no data' : `${s.burnRate.toFixed(2)}x`))));
  byId('slo').replaceChildren(el('p', { class: 'note' }, `From ${slo.source}`), table);
}

const say = (text: string) => {
  byId('status').textContent = text;
};

let traceUrl: string | null = null;
async function poll(): Promise<void> {
  try {
    const state = await api<ConsoleState>('/api/state');
    traceUrl = state.traceUrl;
    if (state.nodes.length === 0) say('Waiting for the first scrape…');
    else {
      drawGraph(state);
      drawTables(state);
      drawSwitches(state.switches);
      drawSlo(state.slo);
      byId('status').dataset['at'] = state.at;
      if (byId('status').textContent?.startsWith('Waiting') || byId('status').textContent?.startsWith('The console'))
        say(`Updated ${new Date(state.at).toLocaleTimeString()}`);
    }
  } catch (err) {
    say(`The console does not answer: ${(err as Error).message}`);
  } finally {
    setTimeout(() => void poll(), POLL_MS);
  }
}

interface Asset {
  id: string;
  title: string;
}
let nextAssets: string | null = null;
async function loadAssets(after?: string): Promise<void> {
  const page = await api<{ items: Asset[]; next: string | null }>(`/api/assets${after ? `?after=${encodeURIComponent(after)}` : ''}`);
  const select = byId<HTMLSelectElement>('asset');
  select.append(...page.items.map((a) => el('option', { value: a.id }, `${a.title} (${a.id})`)));
  nextAssets = page.next;
  byId('more-assets').hidden = nextAssets === null;
}

function answerList(body: Record<string, unknown>, status: number): HTMLDListElement {
  const list = el('dl', { id: 'answer-fields', 'data-status': String(status) });
  const fields = status === 200 ? ['title', 'url', 'assetviews', 'userviews', 'degraded', 'recorded'] : Object.keys(body);
  for (const field of fields) list.append(el('dt', {}, field), el('dd', { 'data-field': field }, JSON.stringify(body[field] ?? null)));
  return list;
}

let following = 0;
async function play(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const assetId = byId<HTMLSelectElement>('asset').value;
  const userId = byId<HTMLInputElement>('user').value;
  const answer = byId('answer');
  answer.replaceChildren(el('p', {}, 'Playing…'));
  try {
    const result = await api<{ status: number; body: Record<string, unknown>; traceId: string | null }>(
      `/api/play/${encodeURIComponent(assetId)}/${encodeURIComponent(userId)}`,
      { method: 'POST' },
    );
    const parts: Node[] = [el('p', {}, `play answered ${result.status}`), answerList(result.body, result.status)];
    if (traceUrl && result.traceId)
      parts.push(el('p', {}, el('a', { href: traceUrl.replace('{traceId}', result.traceId), target: '_blank', rel: 'noopener' }, `Trace ${result.traceId}`)));
    else if (traceUrl) parts.push(el('p', {}, 'This play was not sampled for tracing (play decides, at its sampling ratio).'));
    const counts = el('p', { id: 'counts', 'aria-live': 'polite' });
    parts.push(counts);
    answer.replaceChildren(...parts);
    if (result.status === 200) void followCounts(assetId, userId, counts);
  } catch (err) {
    answer.replaceChildren(el('p', {}, `The play failed: ${(err as Error).message}`));
  }
}

/** The counts as reporting has them, for a while after the play: they climb once the view is recorded. */
async function followCounts(assetId: string, userId: string, target: HTMLElement): Promise<void> {
  const mine = ++following;
  const until = Date.now() + FOLLOW_COUNTS_MS;
  while (mine === following && Date.now() < until) {
    try {
      const counts = await api<{ assetviews: number; userviews: number }>(`/api/counts/${encodeURIComponent(assetId)}/${encodeURIComponent(userId)}`);
      target.dataset['assetviews'] = String(counts.assetviews);
      target.dataset['userviews'] = String(counts.userviews);
      target.textContent = `Counts now (reporting): asset ${counts.assetviews} views, user ${counts.userviews} views`;
    } catch (err) {
      target.textContent = `Counts unavailable: ${(err as Error).message}`;
    }
    await new Promise((done) => setTimeout(done, POLL_MS));
  }
}

byId<HTMLFormElement>('player').addEventListener('submit', (event) => void play(event));
byId('more-assets').addEventListener('click', () => void (nextAssets ? loadAssets(nextAssets) : undefined));
loadAssets().catch((err: unknown) => say(`Could not list the assets: ${(err as Error).message}`));
void poll();
