/**
 * CPU time of processes as Linux counts it in /proc: user and system time,
 * of a process and, for a server that forks (Postgres), of its children alive
 * and exited. Clock ticks of 10 ms: measure over thousands of requests.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parentOf } from '../kit/proc';

const TICK_US = 10_000; // getconf CLK_TCK is 100 on Linux

/** utime, stime, cutime, cstime of one process in µs; undefined once it is gone. */
function times(pid: number): { own: number; children: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name: state(3) ... utime(14) stime(15) cutime(16) cstime(17).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const field = (n: number) => Number(fields[n - 3]) * TICK_US;
  return { own: field(14) + field(15), children: field(16) + field(17) };
}

/** CPU µs used so far by `pid` and, with `tree`, its children alive and reaped. */
export function cpuMicros(pid: number, tree = false): number {
  const root = times(pid);
  if (!root) return Number.NaN;
  if (!tree) return root.own;
  const children = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && parentOf(Number(entry)) === pid)
    .map((entry) => times(Number(entry))?.own ?? 0);
  return root.own + root.children + children.reduce((a, b) => a + b, 0);
}
