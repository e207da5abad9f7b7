/**
 * A seeded generator of malformed HTTP requests for every route of every
 * service: bad ids, bad bodies, content types, charsets and encodings, bad
 * headers, wrong methods, unknown routes, and a few well-formed requests among
 * them so the deeper layers run too. The same seed gives the same requests.
 *
 * Everything generated is valid HTTP/1.1 a client library can send: bytes that
 * Node's own parser rejects before any service code runs (raw non-ASCII in a
 * path, an unknown method) are left out, since no service can answer those.
 */
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';

export type FuzzService = 'play' | 'metadata' | 'cdnurl' | 'reporting' | 'queue-listener';

export interface FuzzRequest {
  /** Its place in the run, to find it again with the same seed. */
  index: number;
  service: FuzzService;
  /** What was made malformed. */
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
}

/** mulberry32: small, fast, and the same everywhere. */
class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  string(length: number, alphabet: string): string {
    let s = '';
    for (let i = 0; i < length; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
  /** A seeded stand-in for randomUUID, so bodies repeat with the seed. */
  uuid(): string {
    const hex = this.string(32, '0123456789abcdef');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  }
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');

type BodyShape = 'metadata' | 'url' | 'batch' | 'counts';

interface Route {
  service: FuzzService;
  method: 'GET' | 'POST';
  /** `:a` is an asset id, `:u` a user id. */
  template: string;
  body?: BodyShape;
  /** Catalog writes and reporting's record routes: Authorization: Bearer <token> (the fuzz mesh gives both the same). */
  auth?: boolean;
  idempotencyKey?: boolean;
}

const ROUTES: readonly Route[] = [
  { service: 'metadata', method: 'GET', template: '/content/asset/:a' },
  { service: 'metadata', method: 'POST', template: '/content/asset/:a', body: 'metadata', auth: true },
  { service: 'cdnurl', method: 'GET', template: '/url/asset/:a' },
  { service: 'cdnurl', method: 'POST', template: '/url/asset/:a', body: 'url', auth: true },
  { service: 'reporting', method: 'POST', template: '/events/asset/:a/user/:u', idempotencyKey: true, auth: true },
  { service: 'reporting', method: 'POST', template: '/events', body: 'batch', auth: true },
  { service: 'reporting', method: 'GET', template: '/events/user/:u' },
  { service: 'reporting', method: 'GET', template: '/events/asset/:a' },
  { service: 'reporting', method: 'GET', template: '/events/asset/:a/user/:u' },
  { service: 'reporting', method: 'POST', template: '/events/counts', body: 'counts' },
  { service: 'play', method: 'POST', template: '/play/asset/:a/user/:u' },
];
export const SERVICES: readonly FuzzService[] = ['play', 'metadata', 'cdnurl', 'reporting', 'queue-listener'];
const OPERATIONAL = ['/healthz', '/readyz', '/metrics'];

const BODY_LIMIT = 16 * 1024;
const BATCH_BODY_LIMIT = 256 * 1024;

/** A valid id; now and then one of the seed's assets, so some requests reach the data. */
function validId(r: Rng, knownChance = 0.2): string {
  if (r.chance(knownChance)) return r.pick(['123', '456']);
  return r.chance(0.1) ? 'ghost' : r.string(r.chance(0.9) ? r.between(1, 12) : r.between(13, 64), ID_ALPHABET);
}

const UNICODE = ['é', '日本語', '😀', '\u202e', '\u200b', 'ß', 'Ω', '\u0301', 'İ', '\ufeff', '\ud83d\ude00x'];

/** A path segment (already as it goes on the wire) that is not a valid id. */
function badId(r: Rng): string {
  switch (r.int(11)) {
    case 0:
      return r.string(r.between(65, 400), ID_ALPHABET);
    case 1:
      return r.pick(['.', '..', 'a.b', '...', '.hidden', 'a..b', '123.json', '%2e', '%2e%2e', '.%2e']);
    case 2:
      return encodeURIComponent(r.pick(UNICODE) + (r.chance(0.5) ? validId(r) : ''));
    case 3:
      return r.pick(['%2F', 'a%2Fb', '%00', 'a%00b', '%ZZ', '%', 'a%', '%C3%28', '%252F', '%FF', '%u0041', '%E2%80%AE', '%F0%9F%98%80', '%0d%0a', '%5C']);
    case 4:
      return '';
    case 5:
      return encodeURIComponent(
        r.pick([
          ' ',
          'a b',
          "1' OR '1'='1",
          '<script>alert(1)</script>',
          '$(reboot)',
          '${jndi:ldap://x/a}',
          '\\',
          '|',
          '`',
          '{}',
          '[]',
          '"',
          "'",
          '\t',
          'a\nb',
          '\u0000',
        ]),
      );
    case 6:
      return r.pick([';a', 'a;b', '+', 'a+b', '~', '*', ':', '@', '!', '$', '&', '=', ',', "a'b", '(x)']);
    case 7:
      return `${validId(r)}${r.pick(['?x=1', '?%ZZ', '#frag', '?', '?a=1&a=2', `?q=${'x'.repeat(2000)}`])}`;
    case 8:
      return `${validId(r)}%${r.string(2, '0123456789ABCDEFGHIJ')}`;
    case 9:
      return r.string(r.between(1, 20), PRINTABLE.replace(/[A-Za-z0-9_\-%?#/ "<>\\^`{|}]/g, ''));
    default:
      return `${validId(r)}${r.pick(['.', '/', '//', '/..', '%20', '%2F..'])}`;
  }
}

function fillPath(route: Route, asset: string, user: string): string {
  return route.template.replace(':a', asset).replace(':u', user);
}

function validBody(shape: BodyShape, r: Rng): unknown {
  switch (shape) {
    case 'metadata':
      return { title: r.pick(['Alien', 'It', 'Heat']), genre: r.pick(['scifi', 'horror']), summary: r.string(r.between(0, 40), PRINTABLE) };
    case 'url':
      return { url: r.pick(['path/to/x.mp4', 'https://cdn.example/v/1.mp4', 'a/b/c_d-e.m3u8']) };
    case 'batch':
      return { events: Array.from({ length: r.between(1, 5) }, () => validEvent(r)) };
    case 'counts':
      return { plays: Array.from({ length: r.between(1, 5) }, () => ({ assetId: validId(r), userId: validId(r) })) };
  }
}

function validEvent(r: Rng): Record<string, unknown> {
  return { eventId: r.uuid(), assetId: validId(r), userId: validId(r), occurredAt: new Date(Date.UTC(2024, 0, 1) + r.int(1e10)).toISOString() };
}

/** A JSON value of any type, sometimes large or odd. */
function anyValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 7 : 9)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, -0]);
    case 3:
      return r.string(r.between(0, 30), PRINTABLE);
    case 4:
      return r.pick(['', ' ', '\u0000', 'a\u0000b', '\ud800', '\udfff', '\ufeff', 'é', '\u202e', '\r\n', 'x'.repeat(r.between(100, 3000))]);
    case 5:
      return r.pick([
        '2024-01-01T00:00:00Z',
        'now',
        '9999-12-31T23:59:59Z',
        '+275760-09-13T00:00:00.000Z',
        '2024-13-45T25:61:61Z',
        '2024-01-01T00:00:00+05:00',
        '1970-01-01T00:00:00.000000001Z',
      ]);
    case 6:
      return {};
    case 7:
      return Array.from({ length: r.between(0, 4) }, () => anyValue(r, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: r.between(1, 4) }, () => [
          r.pick(['a', '__proto__', 'constructor', 'title', 'events', 'eventId', 'url', '']),
          anyValue(r, depth + 1),
        ]),
      );
  }
}

function nested(r: Rng, limit: number): string {
  const depth = r.pick([64, 1000, 5000, Math.floor(limit / 2) - 10]);
  return r.chance(0.5) ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(Math.floor(depth / 5))}1${'}'.repeat(Math.floor(depth / 5))}`;
}

/** A body that is wrong for the shape: types, fields, sizes, syntax. */
function badBody(shape: BodyShape | undefined, r: Rng): { kind: string; text: string | Buffer } {
  const limit = shape === 'batch' ? BATCH_BODY_LIMIT : BODY_LIMIT;
  const valid = shape ? (validBody(shape, r) as Record<string, unknown>) : { a: 1 };
  switch (r.int(12)) {
    case 0:
      return { kind: 'body: wrong top-level type', text: JSON.stringify(r.pick([null, [], 123, 'str', true, 1.5, [valid]])) };
    case 1: {
      const key = r.pick(Object.keys(valid));
      return { kind: 'body: field of the wrong type', text: JSON.stringify({ ...valid, [key]: anyValue(r) }) };
    }
    case 2: {
      const copy = { ...valid };
      delete copy[r.pick(Object.keys(valid))];
      if (r.chance(0.5)) copy[r.pick(['extra', '__proto__', 'id', 'status'])] = anyValue(r);
      return { kind: 'body: missing or extra field', text: JSON.stringify(copy) };
    }
    case 3:
      if (shape === 'batch') return { kind: 'body: bad events in a batch', text: JSON.stringify({ events: badEvents(r) }) };
      return { kind: 'body: strings out of range', text: JSON.stringify(badStrings(shape, r)) };
    case 4: {
      const text = JSON.stringify(valid);
      return { kind: 'body: truncated JSON', text: text.slice(0, r.int(text.length)) };
    }
    case 5:
      return {
        kind: 'body: not JSON',
        text: r.pick([
          'garbage',
          '{',
          '}',
          '{"a":}',
          "{'a':1}",
          '{"a":1,}',
          '[1,2',
          'NaN',
          'undefined',
          '{"a":1}xyz',
          '{}{}',
          '\ufeff{}',
          '{"a":"\\x41"}',
          '{"a":"\\u12"}',
          '<xml/>',
          'a=1&b=2',
        ]),
      };
    case 6:
      return { kind: 'body: random bytes', text: Buffer.from(Array.from({ length: r.between(1, 300) }, () => r.int(256))) };
    case 7:
      return { kind: 'body: deeply nested', text: nested(r, limit) };
    case 8: {
      const size = shape === 'batch' && r.chance(0.3) ? r.between(limit + 1, limit + 100_000) : r.between(BODY_LIMIT + 1, BODY_LIMIT * 4);
      return { kind: 'body: over the size limit', text: JSON.stringify({ ...valid, pad: 'x'.repeat(size) }) };
    }
    case 9:
      return { kind: 'body: empty', text: r.pick(['', ' ', '\n', 'null', '{}', '[]']) };
    case 10:
      return { kind: 'body: duplicate keys and odd numbers', text: `{"a":1,"a":2,"n":1e999,"m":-1e999,${JSON.stringify(valid).slice(1)}` };
    default:
      return {
        kind: 'body: invalid UTF-8 in strings',
        text: Buffer.concat([
          Buffer.from('{"title":"'),
          Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
          Buffer.from('","genre":"x","summary":"y","url":"z"}'),
        ]),
      };
  }
}

function badStrings(shape: BodyShape | undefined, r: Rng): Record<string, unknown> {
  const weird = () =>
    r.pick([
      '',
      '   ',
      'a\u0000b',
      '\u0000',
      '\ud800',
      'x'.repeat(r.between(201, 3000)),
      '\u202e\u200b',
      'é'.repeat(300),
      'javascript:alert(1)',
      'https://',
      'http://a b/',
      'ftp://x/y',
      '//evil.example/x',
      '../../etc/passwd',
      'data:text/html,<b>',
    ]);
  if (shape === 'url') return { url: weird() };
  if (shape === 'counts') return { plays: [{ assetId: weird(), userId: r.chance(0.5) ? weird() : 'ok' }] };
  return { title: r.chance(0.5) ? weird() : 'ok', genre: r.chance(0.5) ? weird() : 'ok', summary: r.chance(0.5) ? weird() : 'ok' };
}

function badEvents(r: Rng): unknown {
  switch (r.int(6)) {
    case 0:
      return anyValue(r);
    case 1:
      return [];
    case 2:
      // One over the batch limit of 500.
      return Array.from({ length: 501 }, () => ({ eventId: r.uuid(), assetId: 'a', userId: 'u', occurredAt: '2024-01-01T00:00:00Z' }));
    case 3: {
      // The same eventId twice in one batch, sometimes for another asset.
      const event = validEvent(r);
      return [event, r.chance(0.5) ? event : { ...event, assetId: validId(r) }, validEvent(r)];
    }
    default:
      return Array.from({ length: r.between(1, 20) }, () => {
        if (r.chance(0.3)) return validEvent(r);
        if (r.chance(0.3)) return anyValue(r);
        const event = validEvent(r);
        event[r.pick(['eventId', 'assetId', 'userId', 'occurredAt', 'extra'])] = r.chance(0.5) ? anyValue(r) : badIdValue(r);
        return event;
      });
  }
}

function badIdValue(r: Rng): string {
  return r.pick(['', 'a.b', 'a:b', 'a b', 'x'.repeat(65), 'x'.repeat(129), 'é', 'a\u0000', '../x', 'a/b', '*', '>', 'events.view']);
}

const CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/json; charset=latin1',
  'application/json; charset=iso-8859-1',
  'application/json; charset=utf-16',
  'application/json; charset=utf-16le',
  'application/json; charset=utf-32',
  'application/json; charset=utf-7',
  'application/json; charset=utf-bogus',
  'application/json; charset=bogus',
  'application/json;charset="utf-8"',
  'APPLICATION/JSON',
  'application/merge-patch+json',
  'application/json, text/plain',
  'application/',
  '*/*',
  ';;;',
  'application/json; boundary=',
  'image/png',
  'json',
];

const GARBAGE_AUTH = (r: Rng, token: string) =>
  r.pick([
    '',
    'Bearer',
    'Bearer ',
    'bearer',
    'Basic Zm9vOmJhcg==',
    `Bearer ${'x'.repeat(r.between(1, 6000))}`,
    `Bearer ${token}x`,
    `Bearer ${token.slice(0, -1)}`,
    `Bearer  ${token} `,
    `Token ${token}`,
    `${token}`,
    'Bearer é',
    'Bearer null',
    'Bearer \t',
    'Negotiate YIIB',
    `Bearer ${token}, Bearer ${token}`,
  ]);

const GARBAGE_HEADERS: Array<(r: Rng) => [string, string | string[]]> = [
  (r) => [
    'traceparent',
    r.pick([
      '00-zzzz',
      `00-${'0'.repeat(32)}-${'0'.repeat(16)}-01`,
      `ff-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
      'x'.repeat(600),
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz',
    ]),
  ],
  (r) => ['tracestate', r.pick(['garbage', `a=${'x'.repeat(600)}`, Array.from({ length: 40 }, (_, i) => `k${i}=v`).join(','), '=,=,='])],
  (r) => ['baggage', r.pick(['garbage', '%ZZ=1', `k=${'v'.repeat(9000)}`, ';;;'])],
  (r) => ['accept', r.pick(['text/html', '*/*;q=0', 'application/json;q=abc', 'garbage/'])],
  (r) => ['accept-encoding', r.pick(['gzip;q=x', 'br, zstd, *;q=0', 'garbage'])],
  (r) => ['x-forwarded-for', r.pick(['not-an-ip', '999.1.1.1', ', , ,', '::::::'])],
  (r) => ['cookie', r.pick(['a', '=;=;', `s=${'x'.repeat(4000)}`])],
  (r) => ['range', r.pick(['bytes=0-', 'bytes=x-y', 'lines=1'])],
  (r) => ['host', r.pick(['evil.example', 'ä', 'localhost:99999', 'a b', '::1'])],
  (r) => ['if-none-match', r.pick(['*', '"x"', 'W/'])],
  (r) => ['connection', r.pick(['close', 'upgrade', 'keep-alive, x'])],
  (r) => ['x-request-id', [r.string(10, PRINTABLE), r.string(10, PRINTABLE)]],
];

const IDEMPOTENCY_KEYS = (r: Rng): string | string[] =>
  r.pick<string | string[]>(['', ' ', 'a b', 'k'.repeat(129), 'é', 'a/b', 'a,b', ['a', 'b'], '../../etc', '\t', 'key;1', 'key"1', 'ü', 'fuzz-reused-key']);

const WRONG_METHODS = [
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'HEAD',
  'GET',
  'POST',
  'PURGE',
  'PROPFIND',
  'SEARCH',
  'LOCK',
  'MKCOL',
  'COPY',
  'MOVE',
  'REPORT',
  'TRACE',
];

const UNKNOWN_PATHS = [
  '/',
  '/admin',
  '/content',
  '/content/asset',
  '/content/asset/123/extra',
  '/url',
  '/url/asset/123/x',
  '/events/asset',
  '/events/user',
  '/events/asset/1/user',
  '/events/asset/1/user/2/x',
  '/events/',
  '/play/asset/123',
  '/play/asset/123/user',
  '/play/asset/123/user/1/2',
  '/.env',
  '/%2e%2e/%2e%2e/etc/passwd',
  '//content//asset//123',
  '/content/asset/123?x=%ZZ',
  '/metrics/',
  '/metrics.json',
  '/healthz/x',
  '/readyz%00',
  '/HEALTHZ',
  '/api/v1/x',
  '/favicon.ico',
  '/%',
  '/%%%',
  '/*',
  'http://example.com/healthz',
  'http://127.0.0.1/content/asset/123',
];

function pathOfRoute(route: Route, r: Rng, badIds: boolean): string {
  // A play of a known asset costs the whole mesh (four calls, an event, a write): a few suffice.
  const known = route.service === 'play' ? 0.02 : 0.2;
  if (!badIds) return fillPath(route, validId(r, known), validId(r));
  const which = r.int(3);
  return fillPath(route, which === 1 ? validId(r, known) : badId(r), which === 0 ? validId(r) : badId(r));
}

function encodeBody(text: string | Buffer): Buffer {
  return typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
}

/** The request at `index` of the run seeded with `seed`; the same pair gives the same request. */
export function malformedRequest(seed: number, index: number, adminToken: string): FuzzRequest {
  const r = new Rng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  r.next();
  const route = r.pick(ROUTES);
  const headers: Record<string, string | string[]> = {};
  const authorize = () => {
    if (route.auth) headers['authorization'] = `Bearer ${adminToken}`;
  };
  const jsonBodyOf = (value: unknown) => encodeBody(JSON.stringify(value));
  const category = r.int(100);

  if (category < 22) {
    // Bad ids, otherwise a well-formed request.
    authorize();
    const body = route.body ? jsonBodyOf(validBody(route.body, r)) : undefined;
    if (body) headers['content-type'] = 'application/json';
    return { index, service: route.service, kind: 'bad id', method: route.method, path: pathOfRoute(route, r, true), headers, ...(body ? { body } : {}) };
  }
  if (category < 50) {
    // Bad bodies, on routes with a body mostly, on the others too (the JSON parser runs before every route).
    const target = r.chance(0.8) ? r.pick<Route>(ROUTES.filter((x) => x.body)) : route;
    if (target.auth) headers['authorization'] = `Bearer ${adminToken}`;
    const { kind, text } = badBody(target.body, r);
    headers['content-type'] = r.chance(0.9) ? 'application/json' : 'application/json; charset=utf-8';
    return { index, service: target.service, kind, method: 'POST', path: pathOfRoute(target, r, false), headers, body: encodeBody(text) };
  }
  if (category < 60) {
    // Content types and charsets.
    const target = r.chance(0.8) ? r.pick<Route>(ROUTES.filter((x) => x.body)) : route;
    if (target.auth) headers['authorization'] = `Bearer ${adminToken}`;
    const contentType = r.pick(CONTENT_TYPES);
    if (contentType !== '') headers['content-type'] = contentType;
    let body = jsonBodyOf(target.body ? validBody(target.body, r) : { a: 1 });
    if (/utf-16/.test(contentType) && r.chance(0.5)) body = Buffer.from(body.toString('utf8'), 'utf16le');
    if (r.chance(0.2)) body = Buffer.from('title=x&genre=y');
    return { index, service: target.service, kind: 'content type or charset', method: 'POST', path: pathOfRoute(target, r, false), headers, body };
  }
  if (category < 67) {
    // Content encodings: valid and broken gzip, deflate, br; unknown ones; a small body that inflates past the limit.
    const target = r.pick<Route>(ROUTES.filter((x) => x.body));
    if (target.auth) headers['authorization'] = `Bearer ${adminToken}`;
    headers['content-type'] = 'application/json';
    const plain = jsonBodyOf(validBody(target.body!, r));
    const encoding = r.pick(['gzip', 'deflate', 'br', 'identity', 'compress', 'x-gzip', 'gzip, gzip', 'GZIP', 'zstd', 'bogus', 'gzip, identity']);
    headers['content-encoding'] = encoding;
    const mode = r.int(4);
    let body: Buffer;
    if (mode === 0) body = Buffer.from(r.string(r.between(1, 200), PRINTABLE));
    else if (mode === 1) body = gzipSync(Buffer.alloc(r.between(300_000, 2_000_000), 0x20));
    else {
      const compress = encoding.toLowerCase().includes('gzip')
        ? gzipSync
        : encoding === 'deflate'
          ? deflateSync
          : encoding === 'br'
            ? brotliCompressSync
            : (b: Buffer) => b;
      body = compress(plain);
      if (mode === 3) body = body.subarray(0, Math.max(1, r.int(body.length)));
    }
    return { index, service: target.service, kind: 'content encoding', method: 'POST', path: pathOfRoute(target, r, false), headers, body };
  }
  if (category < 79) {
    // Headers: Idempotency-Key, Authorization, trace context and others.
    const target = r.chance(0.5) ? r.pick<Route>(ROUTES.filter((x) => x.auth || x.idempotencyKey)) : route;
    let kind = 'header';
    if (target.idempotencyKey && r.chance(0.7)) {
      headers['idempotency-key'] = IDEMPOTENCY_KEYS(r);
      kind = 'header: Idempotency-Key';
    } else if (target.auth && r.chance(0.8)) {
      headers['authorization'] = GARBAGE_AUTH(r, adminToken);
      kind = 'header: Authorization';
    } else {
      if (target.auth) headers['authorization'] = `Bearer ${adminToken}`;
      for (let i = r.between(1, 3); i > 0; i--) {
        const [name, value] = r.pick(GARBAGE_HEADERS)(r);
        headers[name] = value;
      }
    }
    const body = target.body ? jsonBodyOf(validBody(target.body, r)) : undefined;
    if (body) headers['content-type'] = 'application/json';
    return { index, service: target.service, kind, method: target.method, path: pathOfRoute(target, r, r.chance(0.1)), headers, ...(body ? { body } : {}) };
  }
  if (category < 87) {
    // Wrong methods, on routes and on the operational endpoints.
    const onRoute = r.chance(0.7);
    const service = onRoute ? route.service : r.pick(SERVICES);
    const path = onRoute ? pathOfRoute(route, r, false) : r.pick(OPERATIONAL);
    const method = r.pick(WRONG_METHODS.filter((m) => m !== (onRoute ? route.method : 'GET')));
    const body = r.chance(0.3) && method !== 'GET' && method !== 'HEAD' ? encodeBody(JSON.stringify(anyValue(r))) : undefined;
    if (body) headers['content-type'] = 'application/json';
    return { index, service, kind: 'wrong method', method, path, headers, ...(body ? { body } : {}) };
  }
  if (category < 95) {
    // Unknown routes, on any service.
    const path = r.chance(0.7) ? r.pick(UNKNOWN_PATHS) : `/${Array.from({ length: r.between(1, 5) }, () => (r.chance(0.5) ? badId(r) : validId(r))).join('/')}`;
    return { index, service: r.pick(SERVICES), kind: 'unknown route', method: r.pick(['GET', 'POST', 'GET', 'DELETE']), path, headers };
  }
  // Well-formed requests among the noise, the operational endpoints included.
  if (r.chance(0.3)) {
    return { index, service: r.pick(SERVICES), kind: 'well-formed', method: 'GET', path: r.pick(OPERATIONAL), headers };
  }
  authorize();
  if (route.idempotencyKey && r.chance(0.5)) headers['idempotency-key'] = r.chance(0.5) ? 'fuzz-reused-key' : r.uuid();
  const body = route.body ? jsonBodyOf(validBody(route.body, r)) : undefined;
  if (body) headers['content-type'] = 'application/json';
  return { index, service: route.service, kind: 'well-formed', method: route.method, path: pathOfRoute(route, r, false), headers, ...(body ? { body } : {}) };
}

/** One line that says exactly what was sent (the body shortened). */
export function describeRequest(req: FuzzRequest, port: number): string {
  const body = req.body ? ` body(${req.body.length} B)=${JSON.stringify(req.body.subarray(0, 300).toString('latin1'))}` : '';
  return `#${req.index} [${req.kind}] ${req.method} http://127.0.0.1:${port}${req.path} headers=${JSON.stringify(req.headers)}${body}`;
}
