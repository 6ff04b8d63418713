import { expect } from 'chai';
import { ConfigError } from '../../../src/errors';
import { findCascadeCycle, parseWorkflowsConfig } from '../../../src/workflows/config';
import { loadSchema } from '../../../src/config/schema';
import { loadConfig } from '../../../src/config/load';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The example workflow. */
function example(): Record<string, unknown> {
  return {
    name: 'order-fulfilment',
    session: 'data.order_id',
    ttl: 'P7D',
    events: {
      paid: { table: 'public.payments', on: ['post_save'], when: "data.status = 'captured'" },
      packed: { table: 'public.shipments', on: ['post_save'], when: "data.state = 'packed'" },
      refund: { table: 'public.refunds', on: ['post_save'] },
    },
    tasks: {
      t_ship: {
        after: ['paid', 'packed'],
        unless: ['refund'],
        withParams: { carrier: { name: 'dhl' } },
        run: { cloudevent: { type: 'com.example.order.ready' } },
        retry: { max: 3 },
      },
      t_notify: { after: ['t_ship'], andEvery: 'paid', run: { webhook: { url: 'https://hooks.example.com/notify' } } },
    },
  };
}

/** The problems parseWorkflowsConfig reports for `workflows: [wf]`; `redis` null: no redis key. */
function problems(wf: unknown, redis: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseWorkflowsConfig({ ...(redis !== null && { redis }), workflows: [wf] }, env);
    return [];
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
}

function edited(edit: (wf: Record<string, any>) => void): Record<string, unknown> {
  const wf = example() as Record<string, any>;
  edit(wf);
  return wf;
}

describe('workflows: configuration', () => {
  it('resolves the example: andEvery joins after, defaults filled, tables parsed, tasks in file order', () => {
    const { redis, workflows } = parseWorkflowsConfig({ redis: { url: 'redis://redis:6379/0' }, workflows: [example()] }, {});
    expect(redis).to.deep.equal({ url: 'redis://redis:6379/0', prefix: '', reclaimAfterMs: 60_000, heartbeatIntervalMs: 10_000 });
    const [wf] = workflows;
    expect(wf.ttlMs).to.equal(7 * 24 * 3600 * 1000);
    expect(wf.events.paid.table).to.deep.equal({ schema: 'public', name: 'payments' });
    expect(wf.tasks.map((t) => t.name)).to.deep.equal(['t_ship', 't_notify']);
    expect(wf.tasks[0]).to.deep.include({ after: ['paid', 'packed'], unless: ['refund'], retry: { max: 3 }, withParams: { carrier: { name: 'dhl' } } });
    expect(wf.tasks[1]).to.deep.include({ after: ['t_ship', 'paid'], unless: [], andEvery: 'paid', retry: { max: 0 }, withParams: {} });
  });

  it('defaults ttl to P7D and takes the Redis URL from REDIS_URL', () => {
    const { redis, workflows } = parseWorkflowsConfig({ workflows: [edited((wf) => delete wf.ttl)] }, { REDIS_URL: 'redis://cache:6379' });
    expect(workflows[0].ttl).to.equal('P7D');
    expect(redis?.url).to.equal('redis://cache:6379');
  });

  const CASES: { title: string; wf?: Record<string, unknown>; redis?: unknown; env?: NodeJS.ProcessEnv; problem: string | RegExp }[] = [
    {
      title: 'an unknown input in after',
      wf: edited((wf) => (wf.tasks.t_ship.after = ['paid', 'pakced'])),
      problem: 'workflows[0].tasks.t_ship.after[1]: "pakced" is neither an event nor a task of this workflow (paid, packed, refund, t_ship, t_notify)',
    },
    { title: 'an unknown input in unless', wf: edited((wf) => (wf.tasks.t_ship.unless = ['refunded'])), problem: /^workflows\[0\]\.tasks\.t_ship\.unless\[0\]: "refunded" is neither an event nor a task/ },
    { title: 'an unknown andEvery', wf: edited((wf) => (wf.tasks.t_notify.andEvery = 'payd')), problem: /^workflows\[0\]\.tasks\.t_notify\.andEvery: "payd" is neither an event nor a task/ },
    {
      title: 'a cascade that loops',
      wf: edited((wf) => (wf.tasks.t_ship.after = ['paid', 't_notify'])),
      problem: 'workflows[0].tasks: the cascade t_ship → t_notify → t_ship loops (a task waits, through after or andEvery, for its own result)',
    },
    { title: 'a task waiting for itself', wf: edited((wf) => (wf.tasks.t_ship.after = ['t_ship'])), problem: /^workflows\[0\]\.tasks: the cascade t_ship → t_ship loops/ },
    {
      title: 'a task name without t_',
      wf: edited((wf) => (wf.tasks.ship = wf.tasks.t_ship)),
      problem: /^workflows\[0\]\.tasks\.ship: a task name starts with t_/,
    },
    { title: 'an event name starting with t_', wf: edited((wf) => (wf.events.t_paid = wf.events.paid)), problem: /^workflows\[0\]\.events\.t_paid: an event name must not start with t_/ },
    { title: 'retry.max below zero', wf: edited((wf) => (wf.tasks.t_ship.retry = { max: -1 })), problem: 'workflows[0].tasks.t_ship.retry.max: must be >= 0' },
    { title: 'retry.max not an integer', wf: edited((wf) => (wf.tasks.t_ship.retry = { max: 1.5 })), problem: 'workflows[0].tasks.t_ship.retry.max: must be an integer (got a number)' },
    { title: 'a ttl in months', wf: edited((wf) => (wf.ttl = 'P1M')), problem: /^workflows\[0\]\.ttl: must be an ISO 8601 duration/ },
    { title: 'a ttl of zero', wf: edited((wf) => (wf.ttl = 'PT0S')), problem: 'workflows[0].ttl: must be longer than zero' },
    { title: 'two actions in run', wf: edited((wf) => (wf.tasks.t_ship.run = { cloudevent: {}, webhook: { url: 'https://x' } })), problem: 'workflows[0].tasks.t_ship.run: has cloudevent and webhook; an action is of one kind (write one action for each)' },
    { title: 'an unknown action', wf: edited((wf) => (wf.tasks.t_ship.run = { email: {} })), problem: /^workflows\[0\]\.tasks\.t_ship\.run\.email: unknown key \(allowed: cloudevent, webhook, broker, params, payload/ },
    // run is a trigger action, checked by the action kinds' own parser.
    { title: 'a webhook without url', wf: edited((wf) => (wf.tasks.t_notify.run = { webhook: {} })), problem: 'workflows[0].tasks.t_notify.run.webhook.url: required' },
    { title: 'a webhook method', wf: edited((wf) => (wf.tasks.t_notify.run = { webhook: { url: 'https://h.example.com/', method: 'FETCH' } })), problem: /^workflows\[0\]\.tasks\.t_notify\.run\.webhook\.method: must be one of GET/ },
    { title: 'a webhook URL with credentials', wf: edited((wf) => (wf.tasks.t_notify.run = { webhook: { url: 'https://u:p@h.example.com/' } })), problem: /^workflows\[0\]\.tasks\.t_notify\.run\.webhook\.url: has credentials/ },
    { title: 'a GET with a payload', wf: edited((wf) => (wf.tasks.t_notify.run = { webhook: { url: 'https://h.example.com/', method: 'GET' }, payload: { a: 1 } })), problem: 'workflows[0].tasks.t_notify.run.payload: a GET request sends no body; use POST (or remove the payload)' },
    { title: 'a rateLimit', wf: edited((wf) => (wf.tasks.t_ship.run = { cloudevent: {}, rateLimit: 'fast' })), problem: /^workflows\[0\]\.tasks\.t_ship\.run\.rateLimit: must match/ },
    { title: 'type without format', wf: edited((wf) => (wf.tasks.t_notify.run = { webhook: { url: 'https://h.example.com/' }, type: 'x.y' })), problem: 'workflows[0].tasks.t_notify.run.type: applies only with format: cloudevent (a bare payload has no type)' },
    { title: 'a broker that is not configured', wf: edited((wf) => (wf.tasks.t_ship.run = { broker: 'queue' })), problem: /^workflows\[0\]\.tasks\.t_ship\.run\.broker: / },
    { title: 'a payload placeholder outside inputs, session, instance', wf: edited((wf) => (wf.tasks.t_ship.run = { cloudevent: {}, payload: { id: '{{ order_id }}' } })), problem: 'workflows[0].tasks.t_ship.run.payload.id: {{ order_id }}: a task\'s payload reads inputs, session, instance (e.g. {{ inputs.paid.amount }})' },
    { title: 'a payload reading env', wf: edited((wf) => (wf.tasks.t_ship.run = { cloudevent: {}, payload: { t: '{{ env.TOKEN }}' } })), problem: /^workflows\[0\]\.tasks\.t_ship\.run\.payload\.t: \{\{ env\.TOKEN \}\}: environment values are not rendered/ },
    { title: 'reclaimAfter not above heartbeatInterval', redis: { url: 'redis://r', reclaimAfter: 'PT5S', heartbeatInterval: 'PT5S' }, problem: /^redis\.reclaimAfter: must be longer than redis\.heartbeatInterval/ },
    { title: 'an unknown task key', wf: edited((wf) => (wf.tasks.t_ship.unles = [])), problem: /^workflows\[0\]\.tasks\.t_ship\.unles: unknown key \(did you mean unless\?/ },
    { title: 'no after and no andEvery', wf: edited((wf) => (wf.tasks.t_ship.after = [])), problem: 'workflows[0].tasks.t_ship.after: required (at least one input) unless andEvery is set' },
    { title: 'a session expression that does not compile', wf: edited((wf) => (wf.session = 'data.order_id +')), problem: /^workflows\[0\]\.session: JSONata syntax error/ },
    { title: 'a when that does not compile', wf: edited((wf) => (wf.events.paid.when = "data.status = 'captured")), problem: /^workflows\[0\]\.events\.paid\.when: JSONata syntax error/ },
    { title: 'a bad table name', wf: edited((wf) => (wf.events.paid.table = 'public.')), problem: /^workflows\[0\]\.events\.paid\.table: "public\."/ },
    { title: 'no Redis', redis: null, problem: 'redis.url: required when workflows are configured (or set REDIS_URL)' },
    { title: 'a Redis URL of another scheme', redis: { url: 'http://redis:6379' }, problem: 'redis.url: must match ^rediss?:// (got "http://redis:6379")' },
    { title: 'a REDIS_URL of another scheme', redis: null, env: { REDIS_URL: 'redis.local:6379' }, problem: 'REDIS_URL: must be a redis:// or rediss:// URL' },
    { title: 'a key prefix with a brace (it would move the hash tag)', redis: { url: 'redis://r', prefix: 'a{b}' }, problem: 'redis.prefix: must match ^[^{}]*$ (got "a{b}")' },
  ];
  for (const c of CASES) {
    it(`names the key path: ${c.title}`, () => {
      const got = problems(c.wf ?? example(), c.redis === undefined ? { url: 'redis://127.0.0.1:6379/0' } : c.redis, c.env ?? {});
      if (typeof c.problem === 'string') expect(got).to.include(c.problem);
      else expect(got.some((p) => (c.problem as RegExp).test(p)), got.join('\n')).to.equal(true);
    });
  }

  it('refuses two workflows of one name', () => {
    expect(() => parseWorkflowsConfig({ redis: { url: 'redis://r' }, workflows: [example(), example()] }, {})).to.throw(
      ConfigError,
      'workflows[1].name: "order-fulfilment" is already the name of workflows[0]; names must be unique',
    );
  });

  it('findCascadeCycle ignores unless (it never makes a task run)', () => {
    expect(findCascadeCycle([{ name: 't_a', after: ['x'] }, { name: 't_b', after: ['t_a'] }])).to.equal(undefined);
    expect(findCascadeCycle([{ name: 't_a', after: ['t_c'] }, { name: 't_b', after: ['t_a'] }, { name: 't_c', after: ['t_b'] }])).to.deep.equal(['t_a', 't_c', 't_b', 't_a']);
  });

  it('the file\'s schema holds its two keys, which the loader checks with the rest of the file', () => {
    const { properties } = loadSchema() as { properties: Record<string, unknown> };
    expect(properties).to.include.keys('redis', 'workflows');
    const dir = mkdtempSync(join(tmpdir(), 'pgce-wf-'));
    const file = join(dir, 'c.yaml');
    const yaml = (table: string) => `tables: [public.payments]
workflows:
  - name: orders
    session: data.order_id
    events: { paid: { table: ${table}, on: [post_save] } }
    tasks: { t_ship: { after: [paid], run: { cloudevent: {} } } }
`;
    const env = { DATABASE_URL: 'postgres://u@127.0.0.1/db', REDIS_URL: 'redis://127.0.0.1:6379/0' };
    try {
      writeFileSync(file, yaml('public.payments'));
      const config = loadConfig({ env, configPath: file });
      expect(config.workflows!.map((w) => w.name)).to.deep.equal(['orders']);
      expect(config.redis).to.deep.include({ url: 'redis://127.0.0.1:6379/0' });
      writeFileSync(file, yaml('public.refunds'));
      expect(() => loadConfig({ env, configPath: file })).to.throw(ConfigError)
        .with.property('problems').that.includes('workflows[0].events.paid.table: public.refunds is not captured; add it to tables (or PG_CLOUDEVENTS_TABLES)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('run is checked as a trigger action of the file: the allow-lists, brokers and limits apply, by key path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgce-wf-'));
    const file = join(dir, 'c.yaml');
    const yaml = (run: string) => `tables: [public.payments]
allow: { webhookUrls: ['https://hooks\\.example\\.com/.*'] }
brokers: { queue: { type: redis, conn: { url: "redis://127.0.0.1:6379" }, params: { stream: s } } }
workflows:
  - name: orders
    session: data.order_id
    events: { paid: { table: public.payments, on: [post_save] } }
    tasks: { t_ship: { after: [paid], run: ${run} } }
`;
    const env = { DATABASE_URL: 'postgres://u@127.0.0.1/db', REDIS_URL: 'redis://127.0.0.1:6379/0' };
    try {
      writeFileSync(file, yaml('{ webhook: { url: "https://hooks.example.com/ship", headers: { X-Order: "{{ env.ORDER_TOKEN }}" } }, timeout: PT2S, payload: { order: "{{ session }}" } }'));
      const [task] = loadConfig({ env, configPath: file }).workflows![0].tasks;
      expect(task.run).to.deep.include({ webhook: { url: 'https://hooks.example.com/ship', method: 'POST', headers: { 'X-Order': '{{ env.ORDER_TOKEN }}' } }, timeoutMs: 2000 });
      writeFileSync(file, yaml('{ broker: queue, params: { stream: orders }, format: cloudevent }'));
      expect(loadConfig({ env, configPath: file }).workflows![0].tasks[0].run).to.deep.equal({ broker: 'queue', params: { stream: 'orders' }, format: 'cloudevent' });
      writeFileSync(file, yaml('{ webhook: { url: "https://evil.example.net/x" } }'));
      expect(() => loadConfig({ env, configPath: file })).to.throw(ConfigError)
        .with.property('problems').that.satisfies((p: string[]) => p.some((x) => x.startsWith('workflows[0].tasks.t_ship.run.webhook.url: ') && /allow\.webhookUrls/.test(x)));
      writeFileSync(file, yaml('{ broker: nosuch }'));
      expect(() => loadConfig({ env, configPath: file })).to.throw(ConfigError)
        .with.property('problems').that.satisfies((p: string[]) => p.some((x) => x.startsWith('workflows[0].tasks.t_ship.run.broker')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('an input selects an application event by type (not with table or on); one of table and type is required', () => {
    const { workflows } = parseWorkflowsConfig({ redis: { url: 'redis://r:6379' }, workflows: [edited((wf) => {
      wf.events.signup = { type: 'com.example.signup', when: "data.plan = 'pro'" };
    })] }, {});
    expect(workflows[0].events.signup).to.deep.equal({ type: 'com.example.signup', when: "data.plan = 'pro'" });
    const redis = { url: 'redis://r:6379' };
    expect(problems(edited((wf) => (wf.events.paid = { table: 'public.payments', on: ['insert'], type: 't' })), redis))
      .to.deep.equal(['workflows[0].events.paid: table and type are exclusive (an input is a table\'s rows or an application event); keep one']);
    expect(problems(edited((wf) => (wf.events.paid = { type: 't', on: ['insert'] })), redis))
      .to.deep.equal(['workflows[0].events.paid.on: does not apply to application events (type); remove it']);
    expect(problems(edited((wf) => (wf.events.paid = { when: 'true' })), redis))
      .to.deep.equal(['workflows[0].events.paid: required: table (with on) for a table\'s rows, or type for application events']);
    expect(problems(edited((wf) => (wf.events.paid = { table: 'public.payments' })), redis)).to.deep.equal(['workflows[0].events.paid.on: required with table']);
    expect(problems(edited((wf) => (wf.events.paid = { type: '' })), redis)).to.deep.equal(['workflows[0].events.paid.type: must NOT have fewer than 1 characters']);
  });
});
