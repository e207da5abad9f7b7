/**
 * How long one thread ran and how long it waited for a CPU, from the kernel's
 * /proc/<pid>/schedstat (ns on a CPU, ns runnable but waiting in a run queue),
 * sampled at a steady pace. For a Node process's pid that is its event-loop
 * thread, so it tells a probe that play left unanswered because its event
 * loop was busy from one it left unanswered because the machine gave that
 * thread no CPU (soak run 74: two probes missed at a load average of 24).
 */
import { readFileSync } from 'node:fs';

export interface SchedSample {
  at: number;
  runNs: number;
  waitNs: number;
}

export interface CpuTime {
  runMs: number;
  waitMs: number;
}

function readSchedstat(pid: number): SchedSample | undefined {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return run === undefined || wait === undefined ? undefined : { at: Date.now(), runNs: run, waitNs: wait };
  } catch {
    return undefined; // gone, or a kernel without schedstats
  }
}

/** Samples the thread every `everyMs` until stopped; stop() gives every sample taken. */
export function sampleCpuWait(pid: number, everyMs = 100): { stop(): SchedSample[] } {
  const samples: SchedSample[] = [];
  const take = () => {
    const sample = readSchedstat(pid);
    if (sample) samples.push(sample);
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

/**
 * What the thread ran and waited between the last sample at or before `from`
 * and the first at or after `to`. Where the samples began after `from` or
 * ended before `to`, only the part they cover counts (less wait, never more);
 * undefined when no two samples fall in or around the window.
 */
export function cpuTimeDuring(samples: readonly SchedSample[], from: number, to: number): CpuTime | undefined {
  const start = samples.findLast((s) => s.at <= from) ?? samples.find((s) => s.at < to);
  const end = samples.find((s) => s.at >= to) ?? samples.findLast((s) => s.at > from);
  if (!start || !end || end.at <= start.at) return undefined;
  return { runMs: (end.runNs - start.runNs) / 1e6, waitMs: (end.waitNs - start.waitNs) / 1e6 };
}

/** Starved: the thread spent at least half of a span of `spanMs` runnable but waiting for a CPU. */
export const starved = (time: CpuTime | undefined, spanMs: number): boolean => time !== undefined && time.waitMs >= spanMs / 2;
