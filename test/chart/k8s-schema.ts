// Offline validation of rendered objects against the Kubernetes OpenAPI
// schemas shipped by kubernetes-models, in three versions (devDependencies):
//   kubernetes-models-oldest (4.3.1): Kubernetes 1.27 - it has the 1.27 field
//     Container.resizePolicy, not the 1.28 field Container.restartPolicy.
//     Older than the oldest version the chart claims (1.29): GA fields are
//     only ever added, so what validates here is valid on 1.29 too.
//   kubernetes-models (4.5.1): Kubernetes 1.33 - Lifecycle.stopSignal (1.33),
//     no PodSpec.hostnameOverride (1.34).
//   kubernetes-models-newest (5.1.0): Kubernetes 1.34 or newer -
//     PodSpec.hostnameOverride.
// CRDs against @kubernetes-models/prometheus-operator and /gateway-api.
// Two complementary checks per schema:
//  - validate: the package's JSON-schema validators (types, formats, required
//    fields, enums); they ignore unknown fields, so
//  - unknownFieldErrors: type-checks each object literal against the
//    package's TypeScript interfaces, whose excess-property check rejects any
//    field that API version does not have (a typo such as `livenesProbe`).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import ts from 'typescript';
import { repoRoot, type Manifest } from './helm';

export interface SchemaSet {
  /** The package (or npm alias) holding the built-in kinds. */
  readonly builtIns: string;
  readonly kubernetes: string;
}

export const schemaSets: readonly SchemaSet[] = [
  { builtIns: 'kubernetes-models-oldest', kubernetes: '1.27' },
  { builtIns: 'kubernetes-models', kubernetes: '1.33' },
  { builtIns: 'kubernetes-models-newest', kubernetes: '1.34+' },
];

/** Package holding each CRD group's models. */
const crdPackages: Readonly<Record<string, string>> = {
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
  'gateway.networking.k8s.io': '@kubernetes-models/gateway-api',
};

function crdPackage(manifest: Pick<Manifest, 'apiVersion'>): string | undefined {
  return crdPackages[manifest.apiVersion.split('/')[0] ?? ''];
}

export function isCustomResource(manifest: Manifest): boolean {
  return manifest.apiVersion.includes('/') && crdPackage(manifest) !== undefined;
}

/** Module of a kind, e.g. kubernetes-models/apps/v1/Deployment. */
function modelPath(manifest: Pick<Manifest, 'apiVersion' | 'kind'>, set: SchemaSet): string {
  return `${crdPackage(manifest) ?? set.builtIns}/${manifest.apiVersion}/${manifest.kind}`;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/** The schema errors of one object, or [] when valid. */
export async function validateManifest(manifest: Manifest, set: SchemaSet): Promise<string[]> {
  const path = modelPath(manifest, set);
  let module: Record<string, unknown>;
  try {
    // import(), not require: the newer packages are ES modules only.
    module = (await import(path)) as Record<string, unknown>;
  } catch {
    return [`${manifest.apiVersion} ${manifest.kind} is not an API of Kubernetes ${set.kubernetes} (${path})`];
  }
  const fromDefault = module['default'] as Record<string, unknown> | undefined;
  const ctor = (module[manifest.kind] ?? fromDefault?.[manifest.kind]) as ModelClass | undefined;
  if (typeof ctor !== 'function') return [`${path} has no class ${manifest.kind}`];
  try {
    new ctor(manifest).validate();
    return [];
  } catch (error) {
    return [`${manifest.kind}/${manifest.metadata.name} (Kubernetes ${set.kubernetes}): ${(error as Error).message}`];
  }
}

/** Errors for fields that API version does not define, over many objects at once. */
export function unknownFieldErrors(manifests: readonly Manifest[], set: SchemaSet): string[] {
  const lines: string[] = [];
  const names: string[] = [];
  manifests.forEach((manifest, i) => {
    lines.push(`import type { I${manifest.kind} as T${i} } from '${modelPath(manifest, set)}';`);
    names.push(`${manifest.kind}/${manifest.metadata.name}`);
  });
  manifests.forEach((manifest, i) => {
    lines.push(`export const m${i}: T${i} = ${JSON.stringify(manifest)};`);
  });
  // An ES module, so that it may import the types of ES-module-only packages.
  const fileName = join(repoRoot, 'test', 'chart', '__rendered__.mts');
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (path) => (path === fileName ? source : readFile(path));
  host.fileExists = (path) => path === fileName || ts.sys.fileExists(path);
  host.getSourceFile = (path, version, onError, create) =>
    path === fileName ? ts.createSourceFile(path, source, version) : getSourceFile(path, version, onError, create);
  const program = ts.createProgram([fileName], options, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const line = diagnostic.file && diagnostic.start !== undefined ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line : -1;
    return `${names[line - manifests.length] ?? names[line] ?? 'rendered objects'} (Kubernetes ${set.kubernetes}): ${message}`;
  });
}

/** Whether a schema package's definition of a type mentions a field (for the version claims above). */
export function schemaHasField(set: SchemaSet, schema: string, field: string): boolean {
  const file = join(repoRoot, 'node_modules', set.builtIns, '_schemas', `${schema}.js`);
  return new RegExp(`\\b${field}\\b`).test(readFileSync(file, 'utf8'));
}

/**
 * An object as the API server reads it: a field set to null is a field not
 * set (charts often render `env:` or `resources:` with nothing under them).
 */
function withoutNulls<T>(value: T): T {
  if (Array.isArray(value)) return value.map(withoutNulls) as T;
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v)]),
  ) as T;
}

/** Other charts' objects (null fields dropped) against every schema set: types, required fields and unknown fields. */
export async function assertValidObjects(manifests: readonly Manifest[]): Promise<void> {
  const objects = manifests.map(withoutNulls);
  for (const set of schemaSets) {
    const errors = (await Promise.all(objects.map((m) => validateManifest(m, set)))).flat();
    assert.deepEqual(errors, [], `Kubernetes ${set.kubernetes}`);
    assert.deepEqual(unknownFieldErrors(objects, set), [], `Kubernetes ${set.kubernetes}`);
  }
}

/**
 * A CRD's schema as the API server applies it to a create: unknown fields are
 * an error (kubectl's strict validation) rather than silently pruned.
 */
function strictCrdSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strictCrdSchema);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = strictCrdSchema(v);
  if (out['properties'] !== undefined && out['additionalProperties'] === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) {
    out['additionalProperties'] = false;
  }
  return out;
}

/** A validator of one served version of a CustomResourceDefinition (another chart's), returning the errors of an object. */
export function crdValidator(crd: Manifest, version: string): (object: unknown) => string[] {
  const versions = (crd['spec'] as { versions: Array<{ name: string; served: boolean; schema: { openAPIV3Schema: unknown } }> }).versions;
  const served = versions.find((v) => v.name === version);
  assert.ok(served?.served, `${crd.metadata.name} does not serve ${version}`);
  // The schema carries Kubernetes' x-kubernetes-* keywords, unknown to ajv's strict mode.
  const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(strictCrdSchema(served.schema.openAPIV3Schema) as object);
  return (object) => (validate(object) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`));
}
