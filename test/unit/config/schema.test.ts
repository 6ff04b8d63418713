import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import YAML from 'yaml';
import { DEFAULTS, loadConfig } from '../../../src/config/load';
import { findPackageRoot, isHandler, keyPath, loadSchema, schemaPath, validateFileConfig } from '../../../src/config/schema';
import { TempFiles } from './helpers';

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode | boolean;
  default?: unknown;
  $ref?: string;
  $defs?: Record<string, SchemaNode>;
}

/** `#/$defs/name` of the root schema: a shared definition (trigger actions and workflow tasks' run). */
function resolved(node: SchemaNode, root: SchemaNode): SchemaNode {
  return node.$ref?.startsWith('#/$defs/') ? { ...root.$defs![node.$ref.slice('#/$defs/'.length)], ...node, $ref: undefined } : node;
}

/** Every `a.b.c` key path the schema declares, with its `default` when it has one. */
function schemaKeys(node: SchemaNode, prefix = '', root: SchemaNode = node): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [key, declared] of Object.entries(node.properties ?? {})) {
    const child = resolved(declared, root);
    const keyPathText = prefix === '' ? key : `${prefix}.${key}`;
    out.push([keyPathText, child.default]);
    out.push(...schemaKeys(child, keyPathText, root));
    if (child.items) out.push(...schemaKeys(resolved(child.items, root), keyPathText, root));
  }
  return out;
}

describe('config/schema', () => {
  let temp: TempFiles;
  beforeEach(() => (temp = new TempFiles()));
  afterEach(() => temp.cleanup());

  it('finds the package root from the compiled code and reads config/schema.json there', () => {
    const root = findPackageRoot();
    expect(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name).to.equal('pg-cloudevents');
    expect(schemaPath()).to.equal(path.join(root, 'config', 'schema.json'));
    expect(__dirname.startsWith(root)).to.equal(true);
  });

  it('finds the root past package.json files of other packages, and fails clearly with none', () => {
    temp.write('pkg/package.json', JSON.stringify({ name: 'pg-cloudevents' }));
    temp.write('pkg/node_modules/dep/package.json', JSON.stringify({ name: 'dep' }));
    const deep = path.join(temp.dir, 'pkg/node_modules/dep/dist/src/config');
    fs.mkdirSync(deep, { recursive: true });
    expect(findPackageRoot(deep)).to.equal(path.join(temp.dir, 'pkg'));
    const outside = path.join(temp.dir, 'elsewhere');
    fs.mkdirSync(outside);
    expect(() => findPackageRoot(outside)).to.throw(/cannot find the pg-cloudevents package root/);
  });

  it("the schema's default annotations agree with the loader's defaults", () => {
    const annotated = schemaKeys(loadSchema() as SchemaNode).filter(([, d]) => d !== undefined);
    expect(annotated.length).to.be.greaterThan(10);
    for (const [key, value] of annotated) {
      const [section, name] = key.split('.');
      const defaults = (DEFAULTS as unknown as Record<string, Record<string, unknown>>)[section];
      expect(defaults?.[name], key).to.equal(value);
    }
  });

  it('config/example.yaml is valid and documents every key of the schema', () => {
    const file = path.join(findPackageRoot(), 'config', 'example.yaml');
    const text = fs.readFileSync(file, 'utf8');
    expect(validateFileConfig(YAML.parse(text))).to.deep.equal([]);
    for (const [key] of schemaKeys(loadSchema() as SchemaNode)) {
      const last = key.split('.').pop() as string;
      expect(text, `example.yaml lacks ${key}`).to.match(new RegExp(`^\\s*(- )?${last}:`, 'm'));
    }
    // And it loads as a whole (it names a database and tables).
    expect(loadConfig({ env: {}, configPath: file }).tables.length).to.be.greaterThan(0);
  });

  it('turns JSON pointers into key paths', () => {
    expect(keyPath('')).to.equal('(root)');
    expect(keyPath('/delivery/backoffPolicy')).to.equal('delivery.backoffPolicy');
    expect(keyPath('/tables/0/table')).to.equal('tables[0].table');
    expect(keyPath('/tables/2', 'app')).to.equal('tables[2].app');
    expect(keyPath('', 'sink')).to.equal('sink');
  });

  it('duration is ours, not ajv-formats\': years and months are refused', () => {
    expect(validateFileConfig({ delivery: { backoffDelay: 'PT0.5S', backoffMax: 'P1DT2H' } })).to.deep.equal([]);
    expect(validateFileConfig({ delivery: { backoffMax: 'P1Y' } })).to.deep.equal([
      'delivery.backoffMax: must be an ISO 8601 duration such as PT0.5S, PT30S or PT1M (no years or months)',
    ]);
  });

  it('knows built-in handlers and module paths, and refuses misspelt names', () => {
    for (const ok of ['http', 'console', 'kafka', './handlers/audit.js#send', '/app/h.mjs', 'lib/h#default', 'h.cjs']) {
      expect(isHandler(ok), ok).to.equal(true);
    }
    for (const bad of ['htp', 'HTTP', 'console#x', 'h.js#1bad', '']) expect(isHandler(bad), bad).to.equal(false);
  });

  it('reports type mismatches with the key path and what was given', () => {
    expect(validateFileConfig({ tables: [3], server: { port: '80' } })).to.deep.equal([
      'tables[0]: must be a string or an object (got a number)',
      'server.port: must be an integer (got a string)',
    ]);
    expect(validateFileConfig([])).to.deep.equal(['(root): must be an object (got an array)']);
  });
});
