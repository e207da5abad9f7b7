/** Runs `run` and says how long it took, in milliseconds of the monotonic clock. */
export async function timed<T>(run: () => PromiseLike<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}
