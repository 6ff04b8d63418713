import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import Redis from 'ioredis';
import { createTestDatabase, waitFor } from './harness/postgres';
import { spawnCli } from './harness/process';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/** Named brokers through `pg-cloudevents run`: configuration → registry → engine → broker. */
describe('run with a named broker handler (real PostgreSQL, real Redis)', function () {
  this.timeout(60_000);

  it('fans tables out to Redis streams named by a template, in commit order per row; the conn URL read from the environment (a dynamic value)', async () => {
    const db = await createTestDatabase('pgce_handler_redis');
    const redis = new Redis('redis://127.0.0.1:6379');
    const streams = ['pgce_hr.public.a', 'pgce_hr.public.b'];
    await redis.del(...streams);
    await db.query('CREATE TABLE a (id int PRIMARY KEY, v int); CREATE TABLE b (id int PRIMARY KEY, v int)');
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: pgce_handler_redis, publication: pgce_handler_redis, statusInterval: PT0.2S }
tables: [ a, b ]
brokers:
  cdc: { type: redis, conn: { url: "redis://{{ env.PGCE_TEST_REDIS_HOST }}:6379" }, params: { stream: "pgce_hr.{{ app }}.{{ model }}" } }
handler: cdc
`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()), PGCE_TEST_REDIS_HOST: '127.0.0.1' });
    await cli.waitForLine(/capturing/, 30_000);
    for (let v = 0; v < 5; v++) {
      await db.query(v === 0 ? 'INSERT INTO a VALUES (1, $1)' : 'UPDATE a SET v = $1 WHERE id = 1', [v]);
      await db.query(v === 0 ? 'INSERT INTO b VALUES (1, $1)' : 'UPDATE b SET v = $1 WHERE id = 1', [v]);
    }
    const read = async (stream: string) =>
      (await redis.xrange(stream, '-', '+')).map(([, fields]) => {
        const event = new CloudEvent<unknown>(JSON.parse(fields[fields.indexOf('event') + 1]));
        event.validate();
        return event;
      });
    await waitFor(async () => (await read(streams[0])).length >= 5 && (await read(streams[1])).length >= 5, {
      timeoutMs: 20_000, intervalMs: 100, what: 'five events in each stream',
    });
    for (const [i, stream] of streams.entries()) {
      const events = await read(stream);
      expect(events.every((e) => e.model === ['a', 'b'][i])).to.equal(true);
      expect(events.map((e) => (e.data as { data: { v: number } }).data.v)).to.deep.equal([0, 1, 2, 3, 4]);
    }
    cli.kill('SIGTERM');
    expect((await cli.exit()).code).to.equal(0);
    await redis.del(...streams);
    redis.disconnect();
    await db.drop();
  });

  it('with batchSize, every change arrives once and in commit order per row', async () => {
    const db = await createTestDatabase('pgce_handler_batch');
    const redis = new Redis('redis://127.0.0.1:6379');
    const stream = 'pgce_hb.events';
    await redis.del(stream);
    await db.query('CREATE TABLE c (id int PRIMARY KEY, v int)');
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: pgce_handler_batch, publication: pgce_handler_batch, statusInterval: PT0.2S }
tables: [ c ]
brokers:
  cdc: { type: redis, batchSize: 50, conn: { url: "redis://127.0.0.1:6379" }, params: { stream: "${stream}" } }
handler: cdc
`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    await cli.waitForLine(/capturing/, 30_000);
    await db.query('INSERT INTO c SELECT g, 0 FROM generate_series(1, 5) g');
    for (let v = 1; v <= 60; v++) await db.query('UPDATE c SET v = $1', [v]);
    const read = async () => (await redis.xrange(stream, '-', '+')).map(([, f]) => new CloudEvent<unknown>(JSON.parse(f[f.indexOf('event') + 1])));
    await waitFor(async () => (await read()).length >= 305, { timeoutMs: 30_000, intervalMs: 100, what: '305 events in the stream' });
    const events = await read();
    expect(new Set(events.map((e) => e.id)).size, 'each change once').to.equal(305);
    for (let id = 1; id <= 5; id++) {
      const values = events.filter((e) => (e.data as { data: { id: number } }).data.id === id).map((e) => (e.data as { data: { v: number } }).data.v);
      expect(values, `row ${id} in commit order`).to.deep.equal(Array.from({ length: 61 }, (_, i) => i));
    }
    cli.kill('SIGTERM');
    expect((await cli.exit()).code).to.equal(0);
    await redis.del(stream);
    redis.disconnect();
    await db.drop();
  });

  it('reports every problem of a broker configuration at once, before connecting', async () => {
    const config = writeTempFile('c.yaml', `tables: [ a ]
brokers:
  k: { type: kafka, conn: { brokers: "not-a-list" }, params: { mode: sideways } }
  r: { type: redis, conn: {}, params: { channel: 5 } }
handler: k
`);
    const r = spawnCli(['check'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', PG_CLOUDEVENTS_CONFIG: config, LOG_LEVEL: 'warn' });
    const { code } = await r.exit();
    expect(code, 'a configuration error, before any connection').to.equal(2);
    const err = r.stderr();
    expect(err).to.match(/brokers\.k\.conn\.brokers/);
    expect(err).to.match(/brokers\.k\.params\.topic: is required/);
    expect(err).to.match(/brokers\.k\.params\.mode/);
    expect(err).to.match(/brokers\.r\.params\.channel/);
    expect(err).to.not.match(/PGCE_ERR_DB_CONNECT/);
  });
});
