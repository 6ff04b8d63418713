import { expect } from 'chai';
import { loadConfig } from '../../../src/config/load';
import { parseTriggerRule } from '../../../src/config/triggers';
import type { TableConfig } from '../../../src/config/types';
import { compileAllowList } from '../../../src/routing/triggers/allow';
import { configError, TempFiles } from './helpers';

const ENV = Object.freeze({ DATABASE_URL: 'postgres://app@127.0.0.1:5432/app' });
const BROKERS = `brokers:
  orders_redis: { type: redis, conn: { url: "redis://127.0.0.1:6379" }, params: { channel: orders } }
`;

/** A rule with one action (YAML flow text), under `extra` top-level settings. */
const ruleWith = (action: string, extra = '') => `${extra}triggers:
  - name: big-sale
    tables: [shop.orders]
    on: [post_save]
    actions:
      - ${action}
`;

describe('config: trigger actions (webhook, broker, cloudevent) by key path', () => {
  let temp: TempFiles;
  beforeEach(() => (temp = new TempFiles()));
  afterEach(() => temp.cleanup());

  const path = (yaml: string) => temp.write('c.yaml', `tables: [shop.orders]\n${yaml}`);
  const load = (yaml: string) => loadConfig({ env: { ...ENV }, configPath: path(yaml) });
  const problems = (yaml: string) => configError({ env: { ...ENV }, configPath: path(yaml) }).problems;

  describe('webhook', () => {
    it('resolves url, method (default POST), headers, timeout, rateLimit, format, type and its own payload', () => {
      const config = load(ruleWith(`webhook: { url: "https://hooks.example.com/sales", headers: { X-Team: pay } }
        payload: { id: "{{ id }}" }
        timeout: PT5S
        rateLimit: 50/s
        format: cloudevent
        type: com.example.sale`));
      expect(config.triggers![0].actions).to.deep.equal([{
        webhook: { url: 'https://hooks.example.com/sales', method: 'POST', headers: { 'X-Team': 'pay' } },
        payload: { id: '{{ id }}' },
        timeoutMs: 5000,
        rateLimit: { count: 50, perMs: 1000, text: '50/s' },
        format: 'cloudevent',
        type: 'com.example.sale',
      }]);
      expect(load(ruleWith('webhook: { url: "https://h.example.com/", method: GET }')).triggers![0].actions[0]).to.deep.include({
        webhook: { url: 'https://h.example.com/', method: 'GET', headers: {} },
      });
    });

    it('refuses a url that is not absolute http(s), has credentials, or holds row placeholders', () => {
      expect(problems(ruleWith('webhook: { url: "ftp://h.example.com/" }'))).to.deep.equal([
        'triggers[0].actions[0].webhook.url: must be an absolute http:// or https:// URL',
      ]);
      expect(problems(ruleWith('webhook: { url: "https://user:pw@h.example.com/" }'))).to.deep.equal([
        'triggers[0].actions[0].webhook.url: has credentials (user:password@) in it; send them in a header (Authorization), from a dynamic value',
      ]);
      const [placeholder] = problems(ruleWith('webhook: { url: "https://h.example.com/{{ id }}" }'));
      expect(placeholder).to.match(/^triggers\[0\]\.actions\[0\]\.webhook\.url: .*only dynamic values may be written in braces here/);
    });

    it('refuses bad headers, a GET with a body, a type without format, a zero timeout', () => {
      expect(problems(ruleWith(`webhook: { url: "https://h.example.com/", method: GET, headers: { "Bad Name": x, Host: y } }
        payload: { a: 1 }
        timeout: PT0S
        type: x.y`))).to.deep.equal([
        'triggers[0].actions[0].timeout: must be an ISO 8601 duration longer than zero (e.g. PT5S), got "PT0S"',
        'triggers[0].actions[0].type: applies only with format: cloudevent (a bare payload has no type)',
        'triggers[0].actions[0].payload: a GET request sends no body; use POST (or remove the payload)',
        'triggers[0].actions[0].webhook.headers["Bad Name"]: not a valid header name',
        'triggers[0].actions[0].webhook.headers["Host"]: set by the HTTP client itself; remove it',
      ]);
    });

    it('the schema names a wrong method, format or rateLimit, and a misspelt key, by key path', () => {
      const found = problems(ruleWith(`webhook: { url: "https://h.example.com/", method: FETCH }
        format: xml
        rateLimit: 5/h
        timout: PT1S`));
      expect(found.some((p) => p.startsWith('triggers[0].actions[0].webhook.method: must be one of GET, POST, PUT, PATCH, DELETE'))).to.equal(true);
      expect(found.some((p) => p.startsWith('triggers[0].actions[0].format: must be one of cloudevent'))).to.equal(true);
      expect(found.some((p) => p.startsWith('triggers[0].actions[0].rateLimit: '))).to.equal(true);
      expect(found.some((p) => p.startsWith('triggers[0].actions[0].timout: unknown key (did you mean timeout?'))).to.equal(true);
    });

    it("an action's payload is compiled with its own key path", () => {
      expect(problems(ruleWith(`webhook: { url: "https://h.example.com/" }
        payload: { x: "{{ }}" }`))[0]).to.match(/^triggers\[0\]\.actions\[0\]\.payload\.x: /);
    });
  });

  describe('broker', () => {
    it('names a configured broker; params merged over its own are checked by its type', () => {
      const config = load(ruleWith(`broker: orders_redis
        params: { channel: sales }`, BROKERS));
      expect(config.triggers![0].actions).to.deep.equal([{ broker: 'orders_redis', params: { channel: 'sales' } }]);
      expect(problems(ruleWith('broker: orders_kafka', BROKERS))).to.deep.equal([
        'triggers[0].actions[0].broker: "orders_kafka" is not a configured broker (brokers: orders_redis)',
      ]);
      expect(problems(ruleWith('broker: orders_kafka'))).to.deep.equal([
        'triggers[0].actions[0].broker: "orders_kafka" is not a configured broker (no brokers are configured; add it under brokers)',
      ]);
      expect(problems(ruleWith(`broker: orders_redis
        params: { topic: sales, maxlen: 0 }`, BROKERS))).to.include.members([
        'triggers[0].actions[0].params (merged over brokers.orders_redis.params).topic: unknown key',
        'triggers[0].actions[0].params (merged over brokers.orders_redis.params).maxlen: must be >= 1',
      ]);
    });

    it('refuses a webhook-only setting and a non-object params', () => {
      expect(problems(ruleWith(`broker: orders_redis
        params: [a]`, BROKERS))).to.deep.equal([
        'triggers[0].actions[0].params: must be an object (got an array)',
      ]);
    });
  });

  describe('dynamic values: allowed only as listed in allow.dynamicValues, exactly', () => {
    const hook = (header: string, allow: string) =>
      ruleWith(`webhook: { url: "https://h.example.com/", headers: { Authorization: "${header}" } }`, allow);

    it('file rules read any dynamic value while the list is absent', () => {
      expect(load(hook('Bearer {{ env.HOOK_TOKEN }}', '')).triggers![0].actions).to.have.length(1);
    });

    it('with the list: env, file and module values listed exactly are allowed, others refused naming the value and the setting', () => {
      const allow = "allow: { dynamicValues: [env.HOOK_TOKEN, 'file:/run/secrets/token', 'module:lib/values.js#token'] }\n";
      expect(load(hook('Bearer {{ env.HOOK_TOKEN }}', allow)).triggers).to.have.length(1);
      expect(load(hook('{{ file:/run/secrets/token }}', allow)).triggers).to.have.length(1);
      expect(load(hook('{{ module:lib/values.js#token }}', allow)).triggers).to.have.length(1);
      const refused = (value: string) => problems(hook(`{{ ${value} }}`, allow));
      expect(refused('env.HOOK_TOKEN_2')).to.deep.equal([
        'triggers[0].actions[0].webhook.headers["Authorization"]: "env.HOOK_TOKEN_2" is not allowed: ' +
          'it is not in allow.dynamicValues (exact match); add "env.HOOK_TOKEN_2"',
      ]);
      expect(refused('file:/run/secrets/other')[0]).to.include('"file:/run/secrets/other" is not allowed').and.include('allow.dynamicValues');
      expect(refused('file:/run/secrets/token/../x')[0]).to.include('is not allowed');
      expect(refused('module:lib/values.js#other')[0]).to.include('"module:lib/values.js#other" is not allowed');
    });

    it('anchored: env.HOOK does not allow env.HOOK_TOKEN', () => {
      expect(problems(hook('{{ env.HOOK_TOKEN }}', 'allow: { dynamicValues: [env.HOOK] }\n'))[0]).to.include('"env.HOOK_TOKEN" is not allowed');
    });

    it('in broker params too; other placeholders there are the broker\'s destination template', () => {
      const allow = 'allow: { dynamicValues: [env.TOPIC] }\n';
      expect(load(ruleWith(`broker: orders_redis
        params: { channel: "{{ env.TOPIC }}.{{ app }}" }`, allow + BROKERS)).triggers).to.have.length(1);
      expect(problems(ruleWith(`broker: orders_redis
        params: { channel: "{{ env.OTHER }}" }`, allow + BROKERS))[0]).to.match(/^triggers\[0\]\.actions\[0\]\.params\.channel: "env\.OTHER" is not allowed/);
    });

    it('malformed references are named', () => {
      expect(problems(hook('{{ file:relative/path }}', ''))[0]).to.include('a file must be an absolute path');
      expect(problems(hook('{{ module:lib/values }}', ''))[0]).to.include('write module:path/to/file.js#exportName');
    });
  });

  describe('allow.webhookUrls', () => {
    const allow = "allow: { webhookUrls: ['https://hooks\\.example\\.com/.*', 'http://127\\.0\\.0\\.1:8080/.*'] }\n";
    const url = (u: string, extra = allow) => ruleWith(`webhook: { url: "${u}" }`, extra);

    it('file rules: every URL passes while the list is absent; with it, each must match a pattern in full', () => {
      expect(load(url('https://anything.example.org/', '')).triggers).to.have.length(1);
      expect(load(url('https://hooks.example.com/sales')).triggers).to.have.length(1);
      const [refused] = problems(url('https://hooks.example.com.evil.org/'));
      expect(refused).to.match(/^triggers\[0\]\.actions\[0\]\.webhook\.url: https:\/\/hooks\.example\.com\.evil\.org\/ matches no pattern of allow\.webhookUrls/);
      expect(problems(url('https://evil.org/https://hooks.example.com/'))[0]).to.include('matches no pattern');
      expect(problems(url('https://hooks.example.com@evil.org/'))[0]).to.include('has credentials');
    });

    it('a loopback or metadata host only when a pattern names it literally', () => {
      expect(load(url('http://127.0.0.1:8080/hook')).triggers).to.have.length(1);
      const wide = "allow: { webhookUrls: ['https?://.*'] }\n";
      expect(problems(url('http://127.0.0.1:9/hook', wide))[0]).to.include('points at a loopback address');
      expect(problems(url('http://169.254.169.254/latest/', wide))[0]).to.include('points at a cloud metadata address');
    });
  });

  describe('rules from the database or an admin API (untrusted)', () => {
    const captured: TableConfig[] = [{ table: 'shop.orders', schema: 'shop', name: 'orders', app: 'shop', model: 'orders' }];
    const rule = (action: Record<string, unknown>) => ({ name: 'r', tables: ['shop.orders'], on: ['insert'], actions: [action] });
    const parse = (action: Record<string, unknown>, allow?: unknown) =>
      parseTriggerRule(rule(action), 'triggers[name=r]', { captured, typePrefix: 'orm', trusted: false, allow: compileAllowList(allow) }).problems;

    it('are refused a webhook or a dynamic value when the list is absent', () => {
      expect(parse({ webhook: { url: 'https://hooks.example.com/' } })[0]).to.match(
        /^triggers\[name=r\]\.actions\[0\]\.webhook\.url: https:\/\/hooks\.example\.com\/ is not allowed: rules from the database or an admin API need allow\.webhookUrls/,
      );
      expect(parse({ webhook: { url: 'https://hooks.example.com/', headers: { a: '{{ env.X }}' } } }, { webhookUrls: ['https://hooks\\.example\\.com/'] })).to.deep.equal([
        'triggers[name=r].actions[0].webhook.headers["a"]: "env.X" is not allowed: rules from the database or an admin API may read ' +
          'dynamic values only when allow.dynamicValues lists them; add "env.X"',
      ]);
      expect(parse({ webhook: { url: 'https://{{ env.HOST }}/' } }, { dynamicValues: ['env.HOST'] })).to.deep.equal([
        'triggers[name=r].actions[0].webhook.url: a rule from the database or an admin API may call a webhook only when allow.webhookUrls lists its URL; add a pattern matching the whole URL',
      ]);
    });

    it('may use what the lists allow; loopback only when named literally', () => {
      const allow = { webhookUrls: ['https://hooks\\.example\\.com/.*', 'https?://.*\\.internal/.*'] };
      expect(parse({ webhook: { url: 'https://hooks.example.com/x' } }, allow)).to.deep.equal([]);
      expect(parse({ webhook: { url: 'http://localhost/x' } }, { webhookUrls: ['https?://.*'] })[0]).to.include('loopback');
      expect(parse({ webhook: { url: 'http://localhost/x' } }, { webhookUrls: ['http://localhost/.*'] })).to.deep.equal([]);
    });
  });

  it('limits.maxActionTimeout is parsed; zero is refused', () => {
    expect(load('limits: { maxActionTimeout: PT10S }\n').limits).to.deep.equal({ relationDepth: 2, maxActionTimeoutMs: 10_000 });
    expect(problems('limits: { maxActionTimeout: PT0S }\n')).to.deep.equal(['limits.maxActionTimeout: must be longer than zero (got PT0S)']);
    expect(problems("allow: { webhookUrls: ['(unclosed'] }\n")[0]).to.match(/^allow\.webhookUrls\[0\]: not a valid regular expression/);
  });
});
