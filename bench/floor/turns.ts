/**
 * What is asked in one turn of the event loop, sent together, as DataLoader
 * does it: an item that finds nothing in flight and nothing waiting goes at
 * once (a lone play waits for nothing); otherwise it waits for the end of
 * the turn and leaves with the others, up to `max` at a time.
 */
export function inTurns<T, R>(send: (batch: T[]) => Promise<R[]>, max = 500): (item: T) => Promise<R> {
  let waiting: Array<{ item: T; resolve: (r: R) => void; reject: (err: unknown) => void }> = [];
  let inFlight = 0;
  const dispatch = (batch: typeof waiting) => {
    inFlight++;
    send(batch.map((w) => w.item))
      .then(
        (results) => batch.forEach((w, i) => w.resolve(results[i]!)),
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      )
      .finally(() => inFlight--);
  };
  const flush = () => {
    const batch = waiting.slice(0, max);
    waiting = waiting.slice(max);
    if (waiting.length > 0) setImmediate(flush);
    dispatch(batch);
  };
  return (item) =>
    new Promise<R>((resolve, reject) => {
      if (inFlight === 0 && waiting.length === 0) return dispatch([{ item, resolve, reject }]);
      if (waiting.length === 0) setImmediate(flush);
      waiting.push({ item, resolve, reject });
    });
}
