import { readdirSync, readFileSync } from 'node:fs';
import { waitFor } from './wait';

/** Every running process's pid (Linux). */
export function allPids(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}

/** A process's command line as arguments; empty once it is gone. */
export function cmdlineOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** A process's parent pid, from /proc/<pid>/stat; undefined once it is gone. */
export function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may hold spaces; the parent pid is the second field after it.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The state letter of each thread of the process (R, S, T, ...) from /proc/<pid>/task; empty once it is gone. */
function threadStates(pid: number): string[] {
  let threads: string[];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return threads.flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return [stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)];
    } catch {
      return []; // A thread that ended meanwhile.
    }
  });
}

/**
 * Stops the processes (SIGSTOP) and resolves once every thread of each is
 * stopped, or gone. kill(2) returns before the stop is in effect: the kernel
 * wakes one thread, which stops the others when it next runs. On a loaded
 * machine that takes long enough for a server's other threads to answer a
 * request sent after the signal, so a stall must be waited for, not assumed.
 */
export async function stopProcesses(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGSTOP');
    } catch {
      // A process that ended meanwhile answers nothing either.
    }
  }
  // T: stopped; Z and X: ended, so answering nothing either.
  await waitFor(() => pids.every((pid) => threadStates(pid).every((state) => 'TZX'.includes(state))), {
    what: `processes ${pids.join(', ')} stopped`,
    everyMs: 1,
  });
}

/** True while a process runs: false once it is gone or a zombie nobody has reaped yet. */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
