/**
 * Memory of processes as Linux reports it in /proc. RSS counts every page a
 * process maps, so summing it over Postgres' processes counts its shared
 * buffers once per backend; PSS divides each shared page among the processes
 * mapping it, so a sum of PSS is the memory the server really holds.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { allPids, cmdlineOf, parentOf } from '../kit/proc';

/** A `kB` field of /proc/<pid>/status or smaps_rollup, in bytes; undefined if the process is gone. */
function kbField(file: string, field: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

const rssBytes = (pid: number) => kbField(`/proc/${pid}/status`, 'VmRSS');

/**
 * VmRSS and its private part (RssAnon: heap, stacks, malloc). The rest is
 * mostly file pages: the node binary's code and data that the process touched,
 * one copy in the page cache for every Node process on the machine using that
 * file (every pod of one image on a node), which each process's VmRSS counts again.
 */
export function rssParts(pid: number): { rssBytes: number; privateBytes: number } | undefined {
  const rss = rssBytes(pid);
  const anon = kbField(`/proc/${pid}/status`, 'RssAnon');
  return rss === undefined || anon === undefined ? undefined : { rssBytes: rss, privateBytes: anon };
}
/** The most resident memory the process has had since it started (the kernel's high-water mark). */
export const peakRssBytes = (pid: number) => kbField(`/proc/${pid}/status`, 'VmHWM');
const pssBytes = (pid: number) => kbField(`/proc/${pid}/smaps_rollup`, 'Pss');

/** The postmaster listening on `port`: a `postgres` process started with `-p <port>`. */
export function findPostmaster(port: number): number | undefined {
  return allPids().find((pid) => {
    const argv = cmdlineOf(pid);
    const p = argv.indexOf('-p');
    return basename(argv[0] ?? '') === 'postgres' && p >= 0 && argv[p + 1] === String(port);
  });
}

export interface GroupMemory {
  processes: number;
  pssBytes: number;
  rssBytes: number;
  /** Each counted process's command line, as it shows itself (Postgres' say what they are). */
  commands: string[];
}

/** PSS and RSS summed over a process and its children (a postmaster's backends and workers). */
export function processTreeMemory(root: number): GroupMemory {
  const members = [root, ...allPids().filter((pid) => parentOf(pid) === root)];
  const memory: GroupMemory = { processes: 0, pssBytes: 0, rssBytes: 0, commands: [] };
  for (const pid of members) {
    const pss = pssBytes(pid);
    const rss = rssBytes(pid);
    if (pss === undefined || rss === undefined) continue; // exited meanwhile
    memory.processes++;
    memory.pssBytes += pss;
    memory.rssBytes += rss;
    memory.commands.push(cmdlineOf(pid).join(' '));
  }
  return memory;
}
