/**
 * The shell blocks of docs/kubernetes.md that a first user copies, read as
 * commands the rehearsal can carry out against what it runs: `curl` to
 * localhost (through the Ingress rules or skaffold's port-forward), `kubectl
 * get secret ... | base64 -d` into a variable (the rendered Secret's key),
 * `kubectl port-forward svc/...` (the Service's proxy), `npm run <script>`
 * (the compiled script), `helm test` (the release's name and namespace). Any
 * other line is refused: a doc the rehearsal cannot follow says so.
 */
import { UnmodelledError } from './kube';

export type DocCommand =
  | { kind: 'curl'; method: string; url: string }
  | { kind: 'helm-test'; release: string; namespace: string }
  | { kind: 'export-secret'; variable: string; namespace: string; secret: string; key: string }
  | { kind: 'port-forward'; namespace: string; service: string; localPort: number; remotePort: number }
  | { kind: 'npm-run'; script: string; args: string[] };

/** The lines of the first ```sh block after the heading or sentence `marker`, comments dropped. */
export function shellBlockAfter(markdown: string, marker: string): string[] {
  const at = markdown.indexOf(marker);
  if (at < 0) throw new Error(`docs: "${marker}" not found`);
  const open = markdown.indexOf('```sh\n', at);
  const close = markdown.indexOf('\n```', open + 6);
  if (open < 0 || close < 0) throw new Error(`docs: no sh block after "${marker}"`);
  return markdown
    .slice(open + 6, close)
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

const patterns: Array<[RegExp, (m: RegExpExecArray) => DocCommand]> = [
  [/^curl -X (GET|POST) (\S+)$/, (m) => ({ kind: 'curl', method: m[1] ?? '', url: m[2] ?? '' })],
  [/^helm test (\S+) -n (\S+)$/, (m) => ({ kind: 'helm-test', release: m[1] ?? '', namespace: m[2] ?? '' })],
  [
    /^export (\w+)=\$\(kubectl -n (\S+) get secret (\S+) -o jsonpath='\{\.data\.([\w.-]+)\}' \| base64 -d\)$/,
    (m) => ({ kind: 'export-secret', variable: m[1] ?? '', namespace: m[2] ?? '', secret: m[3] ?? '', key: m[4] ?? '' }),
  ],
  [
    /^kubectl -n (\S+) port-forward svc\/(\S+) (\d+):(\d+) &$/,
    (m) => ({ kind: 'port-forward', namespace: m[1] ?? '', service: m[2] ?? '', localPort: Number(m[3]), remotePort: Number(m[4]) }),
  ],
  [/^npm run (\S+) -- (.+)$/, (m) => ({ kind: 'npm-run', script: m[1] ?? '', args: (m[2] ?? '').split(/\s+/) })],
];

export function parseDocCommand(line: string): DocCommand {
  for (const [pattern, make] of patterns) {
    const match = pattern.exec(line);
    if (match) return make(match);
  }
  throw new UnmodelledError(`docs: the rehearsal cannot carry out "${line}"`);
}
