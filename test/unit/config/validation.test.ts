import { expect } from 'chai';
import { loadConfig } from '../../../src/config/load';
import { ErrorCodes } from '../../../src/errors';
import { configError, expectProblem, MINIMAL_ENV, TempFiles, TEST_CA_PEM } from './helpers';

const PASSWORD = 'Tr0ub4dor-s3cret';

describe('config/load validation', () => {
  let temp: TempFiles;
  beforeEach(() => (temp = new TempFiles()));
  afterEach(() => temp.cleanup());

  const withFile = (yaml: string, env: NodeJS.ProcessEnv = { ...MINIMAL_ENV }) =>
    configError({ env, configPath: temp.write('config.yaml', yaml) });

  describe('file values name their key path', () => {
    const cases: Array<[yaml: string, key: string, ...fragments: string[]]> = [
      ['delivery: { backoffPolicy: fibonacci }', 'delivery.backoffPolicy', 'linear, exponential', '"fibonacci"'],
      ['delivery: { backoffDelay: 200ms }', 'delivery.backoffDelay', 'ISO 8601 duration'],
      ['delivery: { retry: 1.5 }', 'delivery.retry', 'integer'],
      ['delivery: { timeout: PT0S }', 'delivery.timeout', 'longer than zero'],
      ['delivery: { backoffDelay: PT1M }', 'delivery.backoffMax', 'PT30S is shorter than delivery.backoffDelay (PT1M)'],
      ['capture: { slot: Bad-Slot }', 'capture.slot', '^[a-z0-9_]{1,63}$', '"Bad-Slot"'],
      [`capture: { publication: ${'p'.repeat(64)} }`, 'capture.publication', '^[a-z0-9_]{1,63}$'],
      ['capture: { mode: outbox }', 'capture.mode', 'logical'],
      ['capture: { statusInterval: PT0S }', 'capture.statusInterval', 'longer than zero'],
      ['capture: { reconnectDelay: PT1M, reconnectMax: PT10S }', 'capture.reconnectMax', 'PT10S is shorter than capture.reconnectDelay (PT1M)'],
      ['capture: { retainedWalWarnBytes: 1GB }', 'capture.retainedWalWarnBytes', 'integer'],
      ['capture: { retainedWalWarnBytes: -1 }', 'capture.retainedWalWarnBytes', '>= 0'],
      ['capture: { retainedWalWarnFraction: 1.5 }', 'capture.retainedWalWarnFraction', '<= 1'],
      ['tables: [{ table: "bad name" }]', 'tables[0].table', 'unexpected " "'],
      ['source: "not a uri"', 'source', 'must be a URI-reference'],
      ['tables: [{ app: polls }]', 'tables[0].table', 'required'],
      ['tables: [a, public.a]', 'tables[1].table', 'listed twice', 'tables[0].table'],
      ['tables: [{ table: a, modle: q }]', 'tables[0].modle', 'did you mean model?'],
      ['tables: []', 'tables', 'no tables configured'],
      ['events: { format: rails }', 'events.format', 'default, django'],
      ['handler: htpp', 'handler', 'built-in handler'],
      ['sink: { url: "ftp://x/" }', 'sink.url', 'http:// or https://'],
      ['sink: { mode: batched }', 'sink.mode', 'binary, structured'],
      ['server: { port: 70000 }', 'server.port', '<= 65535'],
      ['log: { level: verbose }', 'log.level', 'debug'],
      ['database: { url: "mysql://u@h/d" }', 'database.url', 'postgres://'],
      ['colour: blue', 'colour', 'unknown key'],
      ['brokers: { q: { type: redis, batchSize: 0 } }', 'brokers.q.batchSize', '>= 1'],
      ['brokers: { default: { type: redis } }', 'brokers.default', 'reserved for the default route'],
      ['brokers: { q: { type: redis, batchSize: 50.5 } }', 'brokers.q.batchSize', 'integer'],
      ['limits: { relationDepth: -1 }', 'limits.relationDepth', '>= 0'],
      ['limits: { relationDepth: 1.5 }', 'limits.relationDepth', 'integer'],
      ['limits: { relationDepth: 11 }', 'limits.relationDepth', '<= 10'],
    ];
    for (const [yaml, key, ...fragments] of cases) {
      it(`${key} (${yaml})`, () => {
        const env = yaml.startsWith('tables') ? { DATABASE_URL: MINIMAL_ENV.DATABASE_URL } : { ...MINIMAL_ENV };
        const err = withFile(yaml, env);
        expect(err.code).to.equal(ErrorCodes.CONFIG_INVALID);
        expectProblem(err, key, ...fragments);
      });
    }
  });

  it('rejects an unknown key, suggesting the right one (sink.urll)', () => {
    const err = withFile('sink: { urll: "http://sink/" }');
    expect(err.problems).to.deep.equal(['sink.urll: unknown key (did you mean url? allowed: url, mode, caCertsDir, oidcTokenPath, batchSize)']);
  });

  describe('environment values name their variable', () => {
    const cases: Array<[variable: string, value: string, ...fragments: string[]]> = [
      ['K_SINK', 'sink.local/path', 'absolute http:// or https:// URL'],
      ['K_SINK', 'ftp://sink.local/', 'absolute http:// or https:// URL'],
      ['PORT', '0', '1 to 65535', '"0"'],
      ['PORT', '80.5', '1 to 65535'],
      ['PORT', '65536', '1 to 65535'],
      ['LOG_LEVEL', 'loud', 'fatal, error, warn, info, debug, trace, silent', '"loud"'],
      ['LOG_LEVEL', 'verbose', 'fatal, error, warn, info, debug, trace, silent', '"verbose"'],
      ['K_SOURCE', 'has spaces', 'must be a URI-reference'],
      ['K_SOURCE', '/bad%zz', 'must be a URI-reference'],
      ['K_CE_OVERRIDES', '{"extensions":{"id":"x"}}', 'extensions.id', 'may not be overridden'],
      ['K_CE_OVERRIDES', '{nope', 'not valid JSON'],
      ['K_CA_CERTS', 'not a certificate', '-----BEGIN CERTIFICATE-----'],
      ['K_SINK_TIMEOUT', '-1', 'positive number of seconds'],
      ['K_SINK_TIMEOUT', 'PT5S', 'positive number of seconds'],
      ['CLOUDEVENTS_HANDLER', 'kafak', 'built-in handler'],
      ['PG_CLOUDEVENTS_TABLES', ' , ', 'no table names'],
      ['PG_CLOUDEVENTS_TABLES[1]', 'a,b c', 'unexpected " "'],
      ['PG_CLOUDEVENTS_TABLES[1]', 'orders,public.orders', 'listed twice (first as PG_CLOUDEVENTS_TABLES[0])'],
      ['DATABASE_URL', 'mysql://u@h/d', 'postgres:// or postgresql://'],
    ];
    for (const [key, value, ...fragments] of cases) {
      it(`${key}=${value}`, () => {
        const variable = key.replace(/\[\d+\]$/, '');
        const err = configError({ env: { ...MINIMAL_ENV, [variable]: value } });
        expectProblem(err, key, ...fragments);
      });
    }
  });

  describe('K_CA_CERTS: every PEM block must be an X.509 certificate, named by its place', () => {
    const cases: Array<[what: string, value: string, fragment: string]> = [
      ['markers around garbage', '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----', 'certificate block 1 of 1 is not a valid X.509 certificate'],
      ['a good block, then a bad one', `${TEST_CA_PEM}-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n`, 'certificate block 2 of 2 is not a valid X.509 certificate'],
      ['a block without its END line', `-----BEGIN CERTIFICATE-----\nMIIB\n${TEST_CA_PEM}`, 'certificate block 1 of 2 has no -----END CERTIFICATE----- line'],
      ['no block at all', 'not a certificate', 'at least one -----BEGIN CERTIFICATE----- block'],
    ];
    for (const [what, value, fragment] of cases) {
      it(what, () => {
        const err = configError({ env: { ...MINIMAL_ENV, K_CA_CERTS: value } });
        expect(err.problems).to.have.length(1);
        expectProblem(err, 'K_CA_CERTS', fragment);
      });
    }

    it('accepts a bundle of real certificates', () => {
      expect(loadConfig({ env: { ...MINIMAL_ENV, K_CA_CERTS: TEST_CA_PEM + TEST_CA_PEM } }).sink.caCerts).to.include('BEGIN');
    });
  });

  it('an invalid DATABASE_URL or K_SINK is one problem, not also "not set"', () => {
    expect(configError({ env: { ...MINIMAL_ENV, DATABASE_URL: 'notaurl' } }).problems).to.deep.equal([
      'DATABASE_URL: must be a postgres:// or postgresql:// URL (percent-encode special characters in the user name and password)',
    ]);
    for (const handler of [{}, { CLOUDEVENTS_HANDLER: 'http' }]) {
      expect(configError({ env: { ...MINIMAL_ENV, ...handler, K_SINK: 'notaurl' } }).problems).to.deep.equal([
        'K_SINK: must be an absolute http:// or https:// URL',
      ]);
    }
  });

  it('K_CE_OVERRIDES: keys beside "extensions" load, with a warning naming them', () => {
    const warnings: string[] = [];
    const config = loadConfig({
      env: { ...MINIMAL_ENV, K_CE_OVERRIDES: '{"id":"x","extensions":{"team":"data"},"source":"/y"}' },
      warn: (w) => warnings.push(w),
    });
    expect(config.events.overrides).to.deep.equal({ team: 'data' });
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(/^K_CE_OVERRIDES: ignored "id", "source": only "extensions" is defined/);
    const quiet: string[] = [];
    loadConfig({ env: { ...MINIMAL_ENV, K_CE_OVERRIDES: '{"extensions":{"team":"data"}}' }, warn: (w) => quiet.push(w) });
    expect(quiet).to.deep.equal([]);
  });

  it('requires a database URL and at least one table', () => {
    const err = configError({ env: {} });
    expect(err.problems).to.deep.equal([
      'tables: no tables configured (set PG_CLOUDEVENTS_TABLES or tables in the configuration file)',
      'DATABASE_URL: not set (or database.url in the configuration file)',
    ]);
  });

  it('reports every problem at once: file, environment and required values', () => {
    const yaml = [
      'capture: { slot: "BAD" }',
      'delivery: { backoffPolicy: random, retry: -1 }',
      'sink: { urll: x }',
      'tables: [{ table: "a b" }]',
    ].join('\n');
    const err = withFile(yaml, { PORT: 'x', K_SINK: 'nope', K_CE_OVERRIDES: '[]', LOG_LEVEL: 'chatty' });
    for (const key of ['capture.slot', 'delivery.backoffPolicy', 'delivery.retry', 'sink.urll', 'tables[0].table', 'PORT', 'K_SINK', 'K_CE_OVERRIDES', 'LOG_LEVEL', 'DATABASE_URL']) {
      expectProblem(err, key);
    }
    expect(err.problems).to.have.length(10);
  });

  describe('the database password never appears in an error', () => {
    const url = `postgres://app:${PASSWORD}@db.internal:5432/app`;
    const scenarios: Array<[string, () => ReturnType<typeof configError>]> = [
      ['wrong scheme in DATABASE_URL', () => configError({ env: { ...MINIMAL_ENV, DATABASE_URL: `mysql://app:${PASSWORD}@db/app` } })],
      ['unparsable DATABASE_URL', () => configError({ env: { ...MINIMAL_ENV, DATABASE_URL: `postgres://app:${PASSWORD}@db:port/app` } })],
      ['wrong scheme in database.url', () => withFile(`database: { url: "http://app:${PASSWORD}@db/app" }`, { PG_CLOUDEVENTS_TABLES: 'a' })],
      ['another problem next to a good DATABASE_URL', () => configError({ env: { DATABASE_URL: url, PORT: 'x' } })],
      ['YAML syntax error on the url line', () => withFile(`database:\n  url: ${url}: [\n`)],
      ['JSON syntax error next to the url', () => configError({ env: {}, configPath: temp.write('c.json', `{"database": {"url": "${url}" x}}`) })],
      ['JSON syntax error quoting the url', () => configError({ env: {}, configPath: temp.write('d.json', `{"database": {"url": ${url}}}`) })],
      ['JSON syntax error just after the url', () => configError({ env: {}, configPath: temp.write('e.json', `{"database": {"url": "postgres://a:${PASSWORD}@h"}x}`) })],
      ['password-bearing K_SINK', () => configError({ env: { ...MINIMAL_ENV, K_SINK: `ftp://u:${PASSWORD}@sink/` } })],
    ];
    for (const [name, run] of scenarios) {
      it(name, () => {
        const err = run();
        expect(err.problems.length).to.be.greaterThan(0);
        // Not even part of it: V8 quotes a few characters around a JSON syntax error.
        for (const secret of [PASSWORD, PASSWORD.slice(0, 6), PASSWORD.slice(-6)]) expect(err.message).not.to.include(secret);
        expect(err.problems.join('\n')).not.to.include(PASSWORD);
        expect(String(err.stack)).not.to.include(PASSWORD);
        expect(JSON.stringify(err.detail)).not.to.include(PASSWORD);
      });
    }
  });
});
