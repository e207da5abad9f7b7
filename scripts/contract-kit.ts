/**
 * What the contract suite (scripts/contract-suite.ts) asks with and writes
 * its verdicts into: one HTTP call with a timeout through undici's keep-alive
 * pool, answers parsed as JSON where they are, and a record of every check
 * that keeps going past a failure so one run lists them all.
 */
import { isDeepStrictEqual } from 'node:util';
import { request } from 'undici';

/** Each call's budget: a contract answer is quick, a hung service is a failure, not a hang. */
const CALL_TIMEOUT_MS = 10_000;

export interface Answer {
  status: number;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  text: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface Call {
  /** A JSON body. */
  json?: unknown;
  /** Text sent as is, as application/json: bad JSON. */
  raw?: string;
  headers?: Readonly<Record<string, string>>;
}

export async function call(method: 'GET' | 'POST', url: string, { json, raw, headers = {} }: Call = {}): Promise<Answer> {
  const body = raw ?? (json === undefined ? undefined : JSON.stringify(json));
  const response = await request(url, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body,
    headersTimeout: CALL_TIMEOUT_MS,
    bodyTimeout: CALL_TIMEOUT_MS,
  });
  const text = await response.body.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.statusCode, json: parsed, text, headers: response.headers };
}

/** Polls `check` until it holds or `timeoutMs` has passed; true when it held. */
export async function holdsWithin(check: () => Promise<boolean>, { timeoutMs, everyMs }: { timeoutMs: number; everyMs: number }): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** The checks of one run: each printed as it is decided, counted for the closing line. */
export class Verdicts {
  passed = 0;
  readonly failed: string[] = [];
  readonly skipped: string[] = [];

  constructor(private readonly print: (line: string) => void) {}

  expect(holds: boolean, what: string, detail = ''): boolean {
    if (holds) {
      this.passed++;
      this.print(`ok ${what}`);
    } else {
      this.failed.push(what);
      this.print(`FAIL ${what}${detail ? `: ${detail}` : ''}`);
    }
    return holds;
  }

  /** `actual` deep-equals `expected` (JSON values). */
  equal(actual: unknown, expected: unknown, what: string): boolean {
    return this.expect(isDeepStrictEqual(actual, expected), what, `got ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`);
  }

  skip(what: string, why: string): void {
    this.skipped.push(what);
    this.print(`skip ${what}: ${why}`);
  }

  /** The closing line, in the form test runners close with. */
  summary(name: string): string {
    return `${name}: ${this.passed} passed, ${this.failed.length} failed, ${this.skipped.length} skipped`;
  }
}
