/**
 * undici's Agent and its request API, and nothing else of undici: the
 * package's index loads all of it (fetch, WebSocket, EventSource, the cache,
 * the mock and proxy agents), about 27 MiB of RSS in every process, where
 * these two parts take about 13. The version is pinned in package.json; the
 * types are the package's own.
 */
import type { Agent as UndiciAgent, Dispatcher } from 'undici';

/* eslint-disable @typescript-eslint/no-require-imports -- the index is what this module avoids loading */
export const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
const apiRequest = require('undici/lib/api/api-request.js') as (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
/* eslint-enable @typescript-eslint/no-require-imports */

/** undici's `request(url, { dispatcher, ... })`, on the given dispatcher. */
export function request(
  url: string,
  options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Dispatcher },
): Promise<Dispatcher.ResponseData> {
  const { origin, pathname, search } = new URL(url);
  const { dispatcher, ...rest } = options;
  return apiRequest.call(dispatcher, { ...rest, origin, path: pathname + search });
}
