// The CRD's schema is kept by hand beside the operator's types and defaults: this test keeps them equal.
// It reads the shapes of FileClusterSpec and FileClusterStatus with the TypeScript compiler and compares
// them, field by field, with the CRD's openAPIV3Schema in the chart and in manifests/; and it applies the
// CRD's defaults the way the API server does and compares the result with the operator's withDefaults.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { parse } from 'yaml';
import { withDefaults } from '../../../operator/src/api/v1alpha1/defaults.ts';

const REPO = resolve(import.meta.dirname, '../../..');
const TYPES = join(REPO, 'operator/src/api/v1alpha1/types.ts');
const CRDS = ['charts/filecluster/crds/fileclusters.filecluster.dev.yaml', 'manifests/01-crd.yaml'];

/** A field's shape, as both a TypeScript type and an OpenAPI schema can state it. */
type Shape =
  | { kind: 'object'; properties: Record<string, Shape> }
  | { kind: 'map'; values: Shape }
  | { kind: 'array'; items: Shape }
  | { kind: 'string'; enum?: string[] }
  | { kind: 'integer' | 'boolean' | 'int-or-string' | 'any-object' };

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema;
  items?: Schema;
  enum?: string[];
  anyOf?: Schema[];
  default?: unknown;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

function typeShapes(names: string[]): Record<string, Shape> {
  const program = ts.createProgram([TYPES], {
    strict: true,
    allowImportingTsExtensions: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  });
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(TYPES)!;
  const shape = (t: ts.Type): Shape => {
    const type = checker.getNonNullableType(t);
    if (type.flags & ts.TypeFlags.BooleanLike || (type.isUnion() && type.types.every((u) => u.flags & ts.TypeFlags.BooleanLiteral))) return { kind: 'boolean' };
    if (type.flags & ts.TypeFlags.Number) return { kind: 'integer' };
    if (type.flags & ts.TypeFlags.String) return { kind: 'string' };
    if (type.isStringLiteral()) return { kind: 'string', enum: [type.value] };
    if (type.isUnion()) {
      if (type.types.every((u) => u.isStringLiteral())) return { kind: 'string', enum: type.types.map((u) => (u as ts.StringLiteralType).value).sort() };
      const kinds = new Set(type.types.map((u) => shape(u).kind));
      if (kinds.size === 2 && kinds.has('string') && kinds.has('integer')) return { kind: 'int-or-string' };
      throw new Error(`cannot map the union ${checker.typeToString(type)}`);
    }
    if (checker.isArrayType(type)) return { kind: 'array', items: shape(checker.getTypeArguments(type as ts.TypeReference)[0]!) };
    const index = checker.getIndexInfoOfType(type, ts.IndexKind.String);
    if (index && type.getProperties().length === 0) {
      return index.type.flags & ts.TypeFlags.Unknown ? { kind: 'any-object' } : { kind: 'map', values: shape(index.type) };
    }
    const properties: Record<string, Shape> = {};
    for (const p of type.getProperties()) properties[p.name] = shape(checker.getTypeOfSymbolAtLocation(p, file));
    return { kind: 'object', properties };
  };
  const out: Record<string, Shape> = {};
  for (const name of names) {
    const declaration = file.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name);
    assert.ok(declaration, `${name} is declared in types.ts`);
    out[name] = shape(checker.getTypeAtLocation(declaration.name));
  }
  return out;
}

function schemaShape(s: Schema): Shape {
  if (s['x-kubernetes-int-or-string']) return { kind: 'int-or-string' };
  if (s.type === 'object') {
    if (s.properties) return { kind: 'object', properties: Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, schemaShape(v)])) };
    if (s.additionalProperties) return { kind: 'map', values: schemaShape(s.additionalProperties) };
    if (s['x-kubernetes-preserve-unknown-fields']) return { kind: 'any-object' };
  }
  if (s.type === 'array' && s.items) return { kind: 'array', items: schemaShape(s.items) };
  if (s.type === 'string') return s.enum ? { kind: 'string', enum: [...s.enum].sort() } : { kind: 'string' };
  if (s.type === 'integer' || s.type === 'boolean') return { kind: s.type };
  throw new Error(`cannot map the schema ${JSON.stringify(s)}`);
}

/**
 * Where the two shapes disagree, one line per field. An enum is compared when both sides have one: a
 * plain string on either side (status condition types, the log level) only says "a string".
 */
function differences(crd: Shape, types: Shape, path: string): string[] {
  if (crd.kind !== types.kind) return [`${path}: the CRD says ${crd.kind}, the types say ${types.kind}`];
  if (crd.kind === 'object' && types.kind === 'object') {
    const names = new Set([...Object.keys(crd.properties), ...Object.keys(types.properties)]);
    return [...names].sort().flatMap((name) => {
      const [c, t] = [crd.properties[name], types.properties[name]];
      if (!c) return [`${path}.${name}: in the types, not in the CRD`];
      if (!t) return [`${path}.${name}: in the CRD, not in the types`];
      return differences(c, t, `${path}.${name}`);
    });
  }
  if (crd.kind === 'map' && types.kind === 'map') return differences(crd.values, types.values, `${path}[*]`);
  if (crd.kind === 'array' && types.kind === 'array') return differences(crd.items, types.items, `${path}[]`);
  if (crd.kind === 'string' && types.kind === 'string' && crd.enum && types.enum && !isDeepStrictEqual(crd.enum, types.enum)) {
    return [`${path}: the CRD allows ${crd.enum.join('|')}, the types ${types.enum.join('|')}`];
  }
  return [];
}

const isDeepStrictEqual = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Structural defaulting as the API server does it: a missing field with a default gets it, then defaulting goes on inside. */
function applyDefaults(schema: Schema, value: unknown): unknown {
  const v = value === undefined && schema.default !== undefined ? structuredClone(schema.default) : value;
  if (v && typeof v === 'object' && !Array.isArray(v) && schema.properties) {
    const out = { ...(v as Record<string, unknown>) };
    for (const [name, property] of Object.entries(schema.properties)) {
      const defaulted = applyDefaults(property, out[name]);
      if (defaulted !== undefined) out[name] = defaulted;
    }
    return out;
  }
  return v;
}

const crdSchema = (file: string): Schema => {
  const crd = parse(readFileSync(join(REPO, file), 'utf8')) as { spec: { versions: Array<{ name: string; schema: { openAPIV3Schema: Schema } }> } };
  const version = crd.spec.versions.find((v) => v.name === 'v1alpha1');
  assert.ok(version, `${file} serves v1alpha1`);
  return version.schema.openAPIV3Schema;
};

describe('the FileCluster CRD and the operator agree', () => {
  const types = typeShapes(['FileClusterSpec', 'FileClusterStatus']);
  for (const file of CRDS) {
    const schema = crdSchema(file);
    for (const [field, name] of [
      ['spec', 'FileClusterSpec'],
      ['status', 'FileClusterStatus'],
    ] as const) {
      it(`${file}: ${field} has the fields, kinds and enums of ${name}`, () => {
        assert.deepEqual(differences(schemaShape(schema.properties![field]!), types[name]!, field), []);
      });
    }

    it(`${file}: the CRD's defaults are the operator's`, () => {
      const spec = schema.properties!['spec']!;
      // The image has no schema default: the operator fills in the one it is configured with.
      const { image, ...operatorDefaults } = withDefaults({}, 'operator-configured/fileserver:1');
      assert.equal(image, 'operator-configured/fileserver:1');
      assert.deepEqual(applyDefaults(spec, {}), operatorDefaults);
      // Objects given but empty get their fields' defaults, not the object's own default.
      const empty = { storage: {}, resources: {}, replication: {}, metrics: {} };
      const { image: _image, ...emptyDefaults } = withDefaults(empty);
      assert.deepEqual(applyDefaults(spec, empty), emptyDefaults);
    });
  }

  it('tells a wrong CRD from a right one', () => {
    const spec = crdSchema(CRDS[0]!).properties!['spec']!;
    const wrong: Schema = structuredClone(spec);
    wrong.properties!['replication']!.properties!['defaultAck']!.enum = ['local', 'all'];
    wrong.properties!['replication']!.properties!['ackTimeoutMs']!.default = 5000;
    delete wrong.properties!['logLevel'];
    wrong.properties!['extra'] = { type: 'string' };
    assert.deepEqual(differences(schemaShape(wrong), types['FileClusterSpec']!, 'spec'), [
      'spec.extra: in the CRD, not in the types',
      'spec.logLevel: in the types, not in the CRD',
      'spec.replication.defaultAck: the CRD allows all|local, the types all|local|majority',
    ]);
    assert.notDeepEqual(applyDefaults(wrong, {}), withDefaults({}));
  });
});
