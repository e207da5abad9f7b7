/**
 * The commands docs/kubernetes.md gives a first user, carried out against the
 * rehearsal (test/rehearsal/doc-commands.ts says how each is read): a doc
 * whose commands do not work against what the chart renders fails here.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../chart/helm';
import { parseDocCommand, shellBlockAfter, type DocCommand } from './doc-commands';
import { ingressTarget } from './ingress';
import { decodedData } from './kube';
import type { Rehearsal } from './rehearsal';

export const KUBERNETES_DOC = join(repoRoot, 'docs', 'kubernetes.md');

/** Variables a user's shell may hold that would change what a documented command does: the doc must set them itself. */
const CLEARED = ['ADMIN_TOKEN', 'FAULTS_TOKEN', 'RECORD_TOKEN'];

/** The Service proxy URL a request to http://localhost[:port]/path reaches: port 80 through the Ingress rules, another through a port-forward. */
function localTarget(r: Rehearsal, url: string, forwards: ReadonlyMap<number, string>): string {
  const parsed = new URL(url);
  if (parsed.hostname !== 'localhost' && parsed.hostname !== '127.0.0.1') throw new Error(`${url}: only localhost is rehearsed`);
  const path = `${parsed.pathname}${parsed.search}`;
  const port = Number(parsed.port || '80');
  if (port === 80) {
    const target = ingressTarget(r.cluster.release.ingresses, r.cluster.release.services, parsed.hostname, parsed.pathname);
    return `${r.cluster.proxy(target.service).url}${path}`;
  }
  const forwarded = forwards.get(port);
  if (forwarded) return `${forwarded}${path}`;
  const skaffold = r.release.portForwards.find((f) => f.localPort === port && (f.namespace ?? r.release.namespace) === r.release.namespace);
  if (!skaffold) throw new Error(`${url}: nothing forwards localhost:${port} (neither skaffold.yaml nor an earlier command)`);
  return `${serviceUrl(r, skaffold.service, skaffold.port)}${path}`;
}

/** The proxy of a rendered Service, checking it has that port. */
function serviceUrl(r: Rehearsal, service: string, port: number): string {
  const rendered = r.cluster.release.services.find((s) => s.metadata.name === service);
  if (!rendered) throw new Error(`Service ${service} is not rendered`);
  if (!rendered.spec.ports.some((p) => p.port === port)) throw new Error(`Service ${service} has no port ${port}`);
  return r.cluster.proxy(service).url;
}

async function runScript(script: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const scripts = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const file = /^scripts\/with-node node (\S+)$/.exec(scripts[script] ?? '')?.[1];
  if (!file) throw new Error(`npm run ${script}: not a "scripts/with-node node <file>" script the rehearsal can run`);
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !CLEARED.includes(name)));
  const child = spawn(process.execPath, [join(repoRoot, file), ...args], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output: output.trim() };
}

async function carryOut(r: Rehearsal, command: DocCommand, env: Record<string, string>, forwards: Map<number, string>): Promise<string | undefined> {
  const { name: release, namespace } = r.release;
  if ('namespace' in command && command.namespace !== namespace)
    return `the command works in namespace ${command.namespace}; skaffold installs into ${namespace}`;
  switch (command.kind) {
    case 'curl': {
      const res = await fetch(localTarget(r, command.url, forwards), { method: command.method, signal: AbortSignal.timeout(10_000) });
      const body = await res.text();
      if (res.status >= 400) return `${command.method} ${command.url} answered ${res.status} ${body.slice(0, 200)}`;
      if (/\/play\/asset\/123\//.test(command.url) && (JSON.parse(body) as { title?: string }).title !== 'It')
        return `${command.url} answered ${body.slice(0, 200)}`;
      return undefined;
    }
    case 'helm-test':
      return command.release === release ? undefined : `helm test names release ${command.release}; skaffold installs ${release}`;
    case 'export-secret': {
      const secret = r.cluster.release.secrets.get(command.secret);
      const value = secret && decodedData(secret).get(command.key);
      if (value === undefined) return `${command.variable}: the chart renders no Secret ${command.secret} with key ${command.key}`;
      env[command.variable] = value;
      return undefined;
    }
    case 'port-forward':
      forwards.set(command.localPort, serviceUrl(r, command.service, command.remotePort));
      return undefined;
    case 'npm-run': {
      const args = command.args.map((arg) =>
        /^https?:\/\/(localhost|127\.0\.0\.1):\d+\/?$/.test(arg) ? localTarget(r, arg, forwards).replace(/\/$/, '') : arg,
      );
      const run = await runScript(command.script, args, env);
      return run.code === 0 ? undefined : `npm run ${command.script} -- ${command.args.join(' ')} exited ${run.code}: ${run.output}`;
    }
  }
}

/** Carries out the sh block after `marker` in docs/kubernetes.md, line by line; the problems, none when every line did what it says. */
export async function followDocs(r: Rehearsal, marker: string): Promise<string[]> {
  const lines = shellBlockAfter(readFileSync(KUBERNETES_DOC, 'utf8'), marker);
  const env: Record<string, string> = {};
  const forwards = new Map<number, string>();
  const problems: string[] = [];
  for (const line of lines) {
    const problem = await carryOut(r, parseDocCommand(line), env, forwards).catch((err: Error) => err.message);
    if (problem) problems.push(`docs/kubernetes.md: ${line}\n  ${problem}`);
  }
  return problems;
}
