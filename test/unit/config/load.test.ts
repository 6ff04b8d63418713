import { expect } from 'chai';
import { loadConfig } from '../../../src/config/load';
import type { Config } from '../../../src/config/types';
import { ConfigError, ErrorCodes } from '../../../src/errors';
import { compileAllowList } from '../../../src/routing/triggers/allow';
import { configError, MINIMAL_ENV, TempFiles, TEST_CA_PEM } from './helpers';

describe('config/load loadConfig', () => {
  let temp: TempFiles;
  beforeEach(() => (temp = new TempFiles()));
  afterEach(() => temp.cleanup());

  describe('defaults', () => {
    it('fills every setting the environment and file leave out', () => {
      const config = loadConfig({ env: { ...MINIMAL_ENV } });
      expect(config.databaseUrl).to.equal(MINIMAL_ENV.DATABASE_URL);
      expect(config.tables).to.deep.equal([
        { table: 'public.orders', schema: 'public', name: 'orders', app: 'public', model: 'orders' },
      ]);
      expect(config.capture).to.deep.equal({
        mode: 'logical',
        // The per-database default, resolved once connected (test/unit/config/capture-names.test.ts).
        slot: '',
        publication: '',
        names: { slot: 'default', publication: 'default' },
        statusIntervalMs: 10_000,
        reconnectDelayMs: 1_000,
        reconnectMaxMs: 30_000,
        heartbeatIntervalMs: 30_000,
        retainedWalWarnBytes: 1024 * 1024 * 1024,
        retainedWalWarnFraction: 0.5,
        pollIntervalMs: 1000,
        batchSize: 500,
      });
      expect(config.events).to.deep.equal({ enabled: true, format: 'default', typePrefix: 'orm', schemaChanges: false, messagePrefix: 'pgcloudevents', source: undefined, overrides: {} });
      // http, never a quiet console: run and check refuse it without a sink URL (sinks/requireSink).
      expect(config.handler).to.equal('http');
      expect(config.sink).to.deep.equal({
        url: undefined,
        mode: 'binary',
        batchSize: 100,
        timeoutMs: 30_000,
        caCerts: undefined,
        caCertsDir: '/knative-custom-certs',
        oidcTokenPath: '/oidc/token',
      });
      expect(config.delivery).to.deep.equal({
        retry: undefined, // retry forever: nothing may be dropped
        backoffPolicy: 'exponential',
        backoffDelayMs: 200,
        backoffMaxMs: 30_000,
        retryAfterMaxMs: undefined,
        timeoutMs: 30_000,
        maxInFlight: 64,
        maxBufferBytes: 16 * 1024 * 1024,
        deadLetterSink: undefined,
        shutdownGracePeriodMs: 20_000,
      });
      expect(config.deadLetters).to.deep.equal({ schema: 'pgcloudevents', table: 'dead_letters' });
      expect(config.leader).to.deep.equal({ enabled: true, pollIntervalMs: 1000 });
      expect(config.limits).to.deep.equal({ relationDepth: 2 });
      expect(config.server).to.deep.equal({ port: 8080 });
      expect(config.logLevel).to.equal('info');
    });

    it('handler defaults to http, with or without a sink URL (K_SINK or sink.url)', () => {
      expect(loadConfig({ env: { ...MINIMAL_ENV } }).handler).to.equal('http');
      expect(loadConfig({ env: { ...MINIMAL_ENV, K_SINK: 'http://sink.local/' } }).handler).to.equal('http');
      const file = temp.write('c.yaml', 'sink: { url: "https://sink.local/in" }\n');
      expect(loadConfig({ env: { ...MINIMAL_ENV }, configPath: file }).handler).to.equal('http');
    });

    it('typePrefix defaults to django.orm with the django format, unless configured', () => {
      const django = temp.write('d.yaml', 'events: { format: django }\n');
      expect(loadConfig({ env: { ...MINIMAL_ENV }, configPath: django }).events.typePrefix).to.equal('django.orm');
      const custom = temp.write('e.yaml', 'events: { format: django, typePrefix: shop }\n');
      expect(loadConfig({ env: { ...MINIMAL_ENV }, configPath: custom }).events).to.include({ format: 'django', typePrefix: 'shop' });
    });

    it('treats blank variables as unset (Knative sets K_CE_OVERRIDES to "")', () => {
      const config = loadConfig({ env: { ...MINIMAL_ENV, K_CE_OVERRIDES: '', PORT: ' ', K_SINK: '', LOG_LEVEL: '' } });
      expect(config.events.overrides).to.deep.equal({});
      expect(config.server.port).to.equal(8080);
      expect(config.sink.url).to.equal(undefined);
      expect(config.logLevel).to.equal('info');
    });
  });

  describe('file < environment', () => {
    const FILE = [
      'database: { url: "postgres://file@db.file/filedb" }',
      'source: /from/file',
      'tables: [file_table]',
      'handler: console',
      'sink: { url: "http://file.sink/" }',
      'delivery: { timeout: PT5S }',
      'server: { port: 1111 }',
      'log: { level: warn }',
      '',
    ].join('\n');

    type Case = [variable: string, envValue: string, pick: (c: Config) => unknown, fileResult: unknown, envResult: unknown];
    const cases: Case[] = [
      ['DATABASE_URL', 'postgresql://env@db.env/envdb', (c) => c.databaseUrl, 'postgres://file@db.file/filedb', 'postgresql://env@db.env/envdb'],
      ['K_SOURCE', '/from/env', (c) => c.events.source, '/from/file', '/from/env'],
      ['PG_CLOUDEVENTS_TABLES', 'shop.env_table', (c) => c.tables.map((t) => `${t.schema}.${t.name}`), ['public.file_table'], ['shop.env_table']],
      ['CLOUDEVENTS_HANDLER', 'http', (c) => c.handler, 'console', 'http'],
      ['K_SINK', 'https://env.sink/x', (c) => c.sink.url, 'http://file.sink/', 'https://env.sink/x'],
      ['K_SINK_TIMEOUT', '2.5', (c) => [c.sink.timeoutMs, c.delivery.timeoutMs], [5000, 5000], [2500, 2500]],
      ['PORT', '2222', (c) => c.server.port, 1111, 2222],
      ['LOG_LEVEL', 'DEBUG', (c) => c.logLevel, 'warn', 'debug'],
    ];

    it('ADMIN_TOKEN turns the admin API on; a short one is refused without showing it', () => {
      expect(loadConfig({ env: { ...MINIMAL_ENV } }).server.adminToken).to.equal(undefined);
      expect(loadConfig({ env: { ...MINIMAL_ENV, ADMIN_TOKEN: 'a-token-of-32-characters-0123456' } }).server.adminToken).to.equal('a-token-of-32-characters-0123456');
      let problems: string[] = [];
      try {
        loadConfig({ env: { ...MINIMAL_ENV, ADMIN_TOKEN: 'short-secret' } });
      } catch (err) {
        problems = (err as ConfigError).problems;
      }
      expect(problems).to.deep.equal(['ADMIN_TOKEN: must be at least 16 characters (a random one: openssl rand -hex 32)']);
      expect(problems.join()).not.to.include('short-secret');
    });

    for (const [variable, envValue, pick, fileResult, envResult] of cases) {
      it(`${variable} wins over the file, which wins over the default`, () => {
        const file = temp.write('config.yaml', FILE);
        expect(pick(loadConfig({ env: {}, configPath: file }))).to.deep.equal(fileResult);
        expect(pick(loadConfig({ env: { [variable]: envValue }, configPath: file }))).to.deep.equal(envResult);
      });
    }

    it('K_CE_OVERRIDES and K_CA_CERTS come from the environment', () => {
      const config = loadConfig({
        env: { ...MINIMAL_ENV, K_CE_OVERRIDES: '{"extensions":{"team":"payments","tier":2}}', K_CA_CERTS: TEST_CA_PEM + TEST_CA_PEM },
      });
      expect(config.events.overrides).to.deep.equal({ team: 'payments', tier: 2 });
      expect(config.sink.caCerts).to.equal((TEST_CA_PEM + TEST_CA_PEM).trim());
    });

    it('PG_CLOUDEVENTS_TABLES keeps app and model the file gives the same table', () => {
      const file = temp.write('t.yaml', 'tables:\n  - { table: polls_question, app: polls, model: question }\n  - other\n');
      const config = loadConfig({ env: { DATABASE_URL: MINIMAL_ENV.DATABASE_URL, PG_CLOUDEVENTS_TABLES: 'public.polls_question, extra' }, configPath: file });
      expect(config.tables.map((t) => [t.name, t.app, t.model])).to.deep.equal([
        ['polls_question', 'polls', 'question'],
        ['extra', 'public', 'extra'],
      ]);
    });

    it('PG_CLOUDEVENTS_CONFIG names the file; configPath wins over it', () => {
      const a = temp.write('a.yaml', 'server: { port: 1001 }\n');
      const b = temp.write('b.yaml', 'server: { port: 1002 }\n');
      expect(loadConfig({ env: { ...MINIMAL_ENV, PG_CLOUDEVENTS_CONFIG: a } }).server.port).to.equal(1001);
      expect(loadConfig({ env: { ...MINIMAL_ENV, PG_CLOUDEVENTS_CONFIG: a }, configPath: b }).server.port).to.equal(1002);
    });
  });

  describe('files', () => {
    const content = {
      database: { url: 'postgres://app@db/app' },
      source: '/s',
      tables: ['a', { table: 'shop."B"', app: 'shop', model: 'b' }],
      capture: { slot: 'slot_1', publication: 'pub_1', statusInterval: 'PT2S', reconnectDelay: 'PT0.5S', reconnectMax: 'PT1M', heartbeatInterval: 'PT0S',
        retainedWalWarnBytes: 0, retainedWalWarnFraction: 0.25 },
      events: { format: 'django', typePrefix: 'x.y', schemaChanges: true, messagePrefix: 'app.events' },
      handler: './handlers/h.js#send',
      brokers: { cache: { type: 'redis', conn: { url: 'redis://127.0.0.1:6379' }, params: { channel: 'c' }, batchSize: 20 } },
      triggersTable: { enabled: false, reloadInterval: 'PT5S' },
      redis: { url: 'redis://cache:6379/1', prefix: 'shop:', reclaimAfter: 'PT30S', heartbeatInterval: 'PT2S' },
      allow: { webhookUrls: ['https://hooks\\.example\\.com/.*'], dynamicValues: ['env.HOOK_TOKEN'] },
      sink: { url: 'https://sink/', mode: 'batch', batchSize: 50, caCertsDir: '/certs', oidcTokenPath: '/tok' },
      delivery: {
        retry: 3, backoffPolicy: 'linear', backoffDelay: 'PT1S', backoffMax: 'PT10S', retryAfterMax: 'PT0S', timeout: 'PT3S',
        maxInFlight: 8, maxBufferBytes: 1048576, deadLetterSink: 'http://dead/', shutdownGracePeriod: 'PT5S',
      },
      deadLetters: { schema: 'cdc', table: 'failed' },
      leader: { enabled: false, pollInterval: 'PT5S' },
      limits: { relationDepth: 0, maxActionTimeout: 'PT10S' },
      server: { port: 9000 },
      log: { level: 'trace' },
    };
    const expected = {
      databaseUrl: 'postgres://app@db/app',
      tables: [
        { table: 'a', schema: 'public', name: 'a', app: 'public', model: 'a' },
        { table: 'shop."B"', schema: 'shop', name: 'B', app: 'shop', model: 'b' },
      ],
      capture: { mode: 'logical', slot: 'slot_1', publication: 'pub_1', names: { slot: 'file', publication: 'file' }, statusIntervalMs: 2000, reconnectDelayMs: 500, reconnectMaxMs: 60_000, heartbeatIntervalMs: 0,
        retainedWalWarnBytes: 0, retainedWalWarnFraction: 0.25, pollIntervalMs: 1000, batchSize: 500 },
      events: { enabled: true, format: 'django', typePrefix: 'x.y', schemaChanges: true, messagePrefix: 'app.events', source: '/s', overrides: {} },
      handler: './handlers/h.js#send',
      brokers: { cache: { name: 'cache', type: 'redis', conn: { url: 'redis://127.0.0.1:6379' }, params: { channel: 'c' }, batchSize: 20 } },
      triggers: [],
      triggersTable: { enabled: false, reloadIntervalMs: 5000 },
      redis: { url: 'redis://cache:6379/1', prefix: 'shop:', reclaimAfterMs: 30_000, heartbeatIntervalMs: 2000 },
      workflows: [],
      allow: compileAllowList({ webhookUrls: ['https://hooks\\.example\\.com/.*'], dynamicValues: ['env.HOOK_TOKEN'] }),
      limits: { relationDepth: 0, maxActionTimeoutMs: 10_000 },
      sink: { url: 'https://sink/', mode: 'batch', batchSize: 50, timeoutMs: 3000, caCerts: undefined, caCertsDir: '/certs', oidcTokenPath: '/tok' },
      delivery: {
        retry: 3, backoffPolicy: 'linear', backoffDelayMs: 1000, backoffMaxMs: 10_000, retryAfterMaxMs: 0, timeoutMs: 3000,
        maxInFlight: 8, maxBufferBytes: 1048576, deadLetterSink: 'http://dead/', shutdownGracePeriodMs: 5000,
      },
      deadLetters: { schema: 'cdc', table: 'failed' },
      leader: { enabled: false, pollIntervalMs: 5000 },
      server: { port: 9000 },
      logLevel: 'trace',
    };

    it('reads every key from a JSON file', () => {
      const file = temp.write('config.json', JSON.stringify(content, null, 2));
      expect(loadConfig({ env: {}, configPath: file })).to.deep.equal(expected);
    });

    it('reads every key from a YAML file (.yaml or .yml)', () => {
      const yaml = [
        'database:',
        '  url: postgres://app@db/app',
        'source: /s',
        'tables:',
        '  - a',
        '  - table: \'shop."B"\'',
        '    app: shop',
        '    model: b',
        'capture: { slot: slot_1, publication: pub_1, statusInterval: PT2S, reconnectDelay: PT0.5S, reconnectMax: PT1M, heartbeatInterval: PT0S,',
        '  retainedWalWarnBytes: 0, retainedWalWarnFraction: 0.25 }',
        'events: { format: django, typePrefix: x.y, schemaChanges: true, messagePrefix: app.events }',
        'handler: "./handlers/h.js#send"',
        'brokers: { cache: { type: redis, conn: { url: "redis://127.0.0.1:6379" }, params: { channel: c }, batchSize: 20 } }',
        'triggersTable: { enabled: false, reloadInterval: PT5S }',
        'redis: { url: "redis://cache:6379/1", prefix: "shop:", reclaimAfter: PT30S, heartbeatInterval: PT2S }',
        "allow: { webhookUrls: ['https://hooks\\.example\\.com/.*'], dynamicValues: [env.HOOK_TOKEN] }",
        'sink: { url: "https://sink/", mode: batch, batchSize: 50, caCertsDir: /certs, oidcTokenPath: /tok }',
        'delivery: { retry: 3, backoffPolicy: linear, backoffDelay: PT1S, backoffMax: PT10S, retryAfterMax: PT0S, timeout: PT3S,',
        '  maxInFlight: 8, maxBufferBytes: 1048576, deadLetterSink: "http://dead/", shutdownGracePeriod: PT5S }',
        'deadLetters: { schema: cdc, table: failed }',
        'leader: { enabled: false, pollInterval: PT5S }',
        'limits: { relationDepth: 0, maxActionTimeout: PT10S }',
        'server: { port: 9000 }',
        'log: { level: trace }',
      ].join('\n');
      expect(loadConfig({ env: {}, configPath: temp.write('config.yaml', yaml) })).to.deep.equal(expected);
      expect(loadConfig({ env: {}, configPath: temp.write('config.yml', yaml) })).to.deep.equal(expected);
    });

    it('an empty YAML file is an empty configuration', () => {
      const file = temp.write('empty.yaml', '# nothing yet\n');
      expect(loadConfig({ env: { ...MINIMAL_ENV }, configPath: file }).capture.names.slot).to.equal('default');
    });

    it('a missing file is PGCE_ERR_CONFIG_FILE naming the path', () => {
      const missing = `${temp.dir}/nope.yaml`;
      const err = configError({ env: { ...MINIMAL_ENV }, configPath: missing });
      expect(err.code).to.equal(ErrorCodes.CONFIG_FILE);
      expect(err.problems).to.deep.equal([`configuration file ${missing}: not found`]);
    });

    it('an unknown extension is refused before reading', () => {
      const file = temp.write('config.toml', 'x = 1\n');
      const err = configError({ env: { ...MINIMAL_ENV }, configPath: file });
      expect(err.code).to.equal(ErrorCodes.CONFIG_FILE);
      expect(err.problems[0]).to.include(file).and.include('unsupported extension ".toml"');
    });

    it('a YAML syntax error names the path and the line', () => {
      const file = temp.write('bad.yaml', 'server:\n  port: 8080\nsink: [http://a\nlog: { level: info }\n');
      const err = configError({ env: { ...MINIMAL_ENV }, configPath: file });
      expect(err.code).to.equal(ErrorCodes.CONFIG_FILE);
      expect(err.problems[0]).to.match(new RegExp(`^configuration file ${file}: line \\d+, column \\d+: `));
      expect(err.problems[0]).to.match(/line (3|4),/);
    });

    it('duplicate YAML keys are a syntax error, not a silent override', () => {
      const file = temp.write('dup.yaml', 'server: { port: 1 }\nserver: { port: 2 }\n');
      const err = configError({ env: { ...MINIMAL_ENV }, configPath: file });
      expect(err.problems[0]).to.include('line 2,').and.include('unique');
    });

    it('a JSON syntax error names the path and the line', () => {
      const file = temp.write('bad.json', '{\n  "server": { "port": 8080 },\n  "log": { "level": "info", }\n}\n');
      const err = configError({ env: { ...MINIMAL_ENV }, configPath: file });
      expect(err.code).to.equal(ErrorCodes.CONFIG_FILE);
      expect(err.problems[0]).to.match(new RegExp(`^configuration file ${file}: not valid JSON: line 3, column \\d+: `));
    });
  });

  it('returns a deeply frozen configuration', () => {
    const config = loadConfig({ env: { ...MINIMAL_ENV, K_CE_OVERRIDES: '{"extensions":{"a":"b"}}' } });
    for (const part of [config, config.tables, config.tables[0], config.capture, config.events, config.events.overrides, config.sink, config.delivery, config.server]) {
      expect(Object.isFrozen(part)).to.equal(true);
    }
    expect(() => {
      (config.capture as { slot: string }).slot = 'other';
    }).to.throw(TypeError);
    expect(() => (config.tables as unknown[]).push({})).to.throw(TypeError);
    expect(config.capture.slot).to.equal('');
  });
});
