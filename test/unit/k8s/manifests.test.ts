import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import YAML from 'yaml';
import { findPackageRoot } from '../../../src/config/schema';

/**
 * k8s/ as a Knative user applies it (README, "Knative quickstart"): two flavours
 * (`kubectl apply -k k8s/`, `kubectl apply -k k8s/sinkbinding/`), one `images:` entry for both,
 * the example Secret in neither.
 */
const ROOT = findPackageRoot();
const K8S = path.join(ROOT, 'k8s');
const IMAGE_NAME = 'pg-cloudevents';
const SECRET_EXAMPLE = 'secret.example.yaml';

type Obj = Record<string, unknown>;

function yamlFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => f.split(path.sep).join('/'))
    .sort();
}

function documents(file: string): Obj[] {
  return YAML.parseAllDocuments(fs.readFileSync(path.join(K8S, file), 'utf8'))
    .map((d) => d.toJS() as Obj)
    .filter((d) => d !== null);
}

const files = yamlFiles(K8S);
const kustomizations = files.filter((f) => path.posix.basename(f) === 'kustomization.yaml');
const manifests = files.filter((f) => !kustomizations.includes(f));

/** Every `containers` entry anywhere in the object (Deployment, ContainerSource, Knative Service). */
function containers(node: unknown): Obj[] {
  if (Array.isArray(node)) return node.flatMap(containers);
  if (typeof node !== 'object' || node === null) return [];
  const out: Obj[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'containers' && Array.isArray(value)) out.push(...(value as Obj[]));
    else out.push(...containers(value));
  }
  return out;
}

/** The pg-cloudevents containers of every manifest (not event-display's). */
function ourContainers(): Array<{ file: string; container: Obj }> {
  return manifests.flatMap((file) =>
    documents(file).flatMap((doc) => containers(doc))
      .filter((c) => String(c.image).split(/[:@]/)[0].endsWith(IMAGE_NAME))
      .map((container) => ({ file, container })));
}

/** The variables the product reads: in the README's Environment table and in the source. */
function productVariables(): Set<string> {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('### Environment'), readme.indexOf('### File'));
  const documented = [...table.matchAll(/^\| `([A-Z][A-Z0-9_]*)`/gm)].map((m) => m[1]);
  const source = (fs.readdirSync(path.join(ROOT, 'src'), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => fs.readFileSync(path.join(ROOT, 'src', f), 'utf8'))
    .join('\n');
  return new Set(documented.filter((name) => new RegExp(`\\b${name}\\b`).test(source)));
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && fs.existsSync(path.join(dir, command)));
}

describe('k8s/ manifests and kustomizations', () => {
  it('each flavour kustomization lists its manifests; every manifest is listed exactly once; the example Secret never', () => {
    expect(kustomizations).to.include.members(['kustomization.yaml', 'sinkbinding/kustomization.yaml', 'image/kustomization.yaml']);
    const listed: string[] = [];
    for (const k of kustomizations) {
      const [doc] = documents(k);
      for (const r of (doc.resources as string[] | undefined) ?? []) {
        const file = path.posix.normalize(path.posix.join(path.posix.dirname(k), r));
        expect(fs.existsSync(path.join(K8S, file)), `${k} lists ${r}, which does not exist`).to.equal(true);
        listed.push(file);
      }
    }
    expect(listed.sort()).to.deep.equal(manifests.filter((f) => f !== SECRET_EXAMPLE).sort());
    expect(manifests).to.include(SECRET_EXAMPLE);
  });

  it('the image is set in one place: the images: entry of the k8s/image component, which both flavours include', () => {
    const withImages = kustomizations.filter((k) => documents(k)[0].images !== undefined);
    expect(withImages).to.deep.equal(['image/kustomization.yaml']);
    const [component] = documents('image/kustomization.yaml');
    expect(component.kind).to.equal('Component');
    const images = component.images as Obj[];
    expect(images).to.have.length(1);
    expect(images[0].name).to.equal(IMAGE_NAME);
    expect(images[0].newName, 'images: newName').to.be.a('string');
    for (const flavour of ['kustomization.yaml', 'sinkbinding/kustomization.yaml']) {
      const [doc] = documents(flavour);
      const included = ((doc.components as string[]) ?? []).map((c) => path.posix.normalize(path.posix.join(path.posix.dirname(flavour), c)));
      expect(included, `${flavour} includes k8s/image`).to.include('image');
    }
    const ours = ourContainers();
    expect(ours.map((o) => o.file).sort()).to.deep.equal(['containersource.yaml', 'sinkbinding/sinkbinding.yaml']);
    for (const { file, container } of ours) {
      expect(container.image, `${file}: the bare name, which images: replaces (no tag, no registry)`).to.equal(IMAGE_NAME);
    }
  });

  it('env var names in the manifests are ones the product reads', () => {
    const known = productVariables();
    expect([...known]).to.include.members(['DATABASE_URL', 'K_SINK', 'PORT', 'LOG_LEVEL', 'PG_CLOUDEVENTS_TABLES']);
    for (const { file, container } of ourContainers()) {
      const names = ((container.env as Obj[]) ?? []).map((e) => String(e.name));
      expect(names, `${file}: env`).to.include('DATABASE_URL');
      for (const name of names) expect(known.has(name), `${file}: env ${name} is not a variable pg-cloudevents reads`).to.equal(true);
    }
  });

  it('probes: readiness GET /readyz and liveness GET /healthz on the port the container serves (PORT)', () => {
    for (const { file, container } of ourContainers()) {
      const env = Object.fromEntries(((container.env as Obj[]) ?? []).map((e) => [e.name, e.value]));
      const port = Number(env.PORT ?? 8080);
      const ports = (container.ports as Obj[]) ?? [];
      expect(ports.map((p) => p.containerPort), `${file}: containerPort = PORT`).to.deep.equal([port]);
      const resolve = (p: unknown) => (typeof p === 'string' ? ports.find((x) => x.name === p)?.containerPort : p);
      const probe = (kind: string) => (container[kind] as { httpGet?: { path?: string; port?: unknown } } | undefined)?.httpGet;
      expect(probe('readinessProbe')?.path, `${file}: readinessProbe`).to.equal('/readyz');
      expect(probe('livenessProbe')?.path, `${file}: livenessProbe`).to.equal('/healthz');
      expect(resolve(probe('readinessProbe')?.port), `${file}: readinessProbe port`).to.equal(port);
      expect(resolve(probe('livenessProbe')?.port), `${file}: livenessProbe port`).to.equal(port);
    }
  });

  // kubectl ships kustomize; without it the structure above is all that is checked.
  const build = onPath('kubectl') ? it : it.skip;
  build(`kustomize build of both flavours sets the image from images: (${onPath('kubectl') ? 'kubectl kustomize' : 'kubectl absent: kustomize build is not run'})`, () => {
    const [component] = documents('image/kustomization.yaml');
    const entry = (component.images as Obj[])[0];
    const expected = `${entry.newName}:${entry.newTag}`;
    for (const [dir, kinds] of [['.', ['Service', 'ContainerSource']], ['sinkbinding', ['Deployment', 'SinkBinding']]] as const) {
      const out = spawnSync('kubectl', ['kustomize', path.join(K8S, dir)], { encoding: 'utf8', timeout: 60_000 });
      expect(out.status, `kubectl kustomize k8s/${dir}: ${out.stderr}`).to.equal(0);
      const rendered = YAML.parseAllDocuments(out.stdout).map((d) => d.toJS() as Obj);
      expect(rendered.map((d) => d.kind).sort()).to.deep.equal([...kinds].sort());
      const images = rendered.flatMap((d) => containers(d)).map((c) => String(c.image)).filter((i) => !i.includes('event_display'));
      expect(images, `k8s/${dir}`).to.deep.equal([expected]);
      expect(out.stdout).to.not.include('kind: Secret');
    }
  });
});
