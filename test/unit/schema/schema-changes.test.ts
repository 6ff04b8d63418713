/**
 * Schema-change events (README "Schema-change events"): detection against the shape known at a
 * stream position (replays neither invent nor lose a change), the column diff, the event in both
 * formats, and the delivery barrier that keeps a table's rows behind its schema change.
 */
import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { getEventFormat } from '../../../src/events';
import { diffColumns } from '../../../src/events/schema-change';
import type { SchemaChange, SchemaColumn, TableChange } from '../../../src/sources/change';
import { SchemaHistory, schemaColumns } from '../../../src/sources/logical/schema-changes';
import { insertOf, questions, questionsTable, COMMIT_TIME } from '../events/fixtures';
import { harness, MemorySink, settle, until, badRequest } from '../delivery/engine-harness';

const id = (name: string, type = 'integer', key = false): SchemaColumn => ({ name, type, key });
const V1 = [id('id', 'integer', true), id('title', 'character varying(10)')];
const V2 = [...V1, id('note', 'text')];
const V3 = [id('id', 'bigint', true), id('title', 'character varying(10)')];

function schemaChangeOf(oldColumns: SchemaColumn[], newColumns: SchemaColumn[], ordinal = 3): SchemaChange {
  return { kind: 'schema', relation: questions, oldColumns, newColumns, commitLsn: 0x16b3748n, commitTime: COMMIT_TIME, xid: 771, ordinal };
}

describe('schema changes: detection (SchemaHistory)', () => {
  it('the first shape seen is no change; a different one later is, with the shape it replaced', () => {
    const h = new SchemaHistory();
    expect(h.observe(1, V1, 100n, 0)).to.equal(undefined);
    expect(h.observe(1, V1, 200n, 0), 'same columns again (a reconnect, another session)').to.equal(undefined);
    expect(h.observe(1, V2, 300n, 2)).to.deep.equal(V1);
    expect(h.observe(1, V3, 400n, 0)).to.deep.equal(V2);
  });

  it('a replay from before a change reports it again, with the same old columns, and never backwards', () => {
    const h = new SchemaHistory();
    h.observe(1, V1, 100n, 0);
    expect(h.observe(1, V2, 300n, 0)).to.deep.equal(V1);
    // Reconnect: the slot replays from 100: the old shape first (no change), then the change again.
    expect(h.observe(1, V1, 100n, 0)).to.equal(undefined);
    expect(h.observe(1, V1, 200n, 0)).to.equal(undefined);
    expect(h.observe(1, V2, 300n, 0)).to.deep.equal(V1);
    // Reconnect straight at the change (100 acknowledged): still reported.
    h.prune(100n);
    expect(h.observe(1, V2, 300n, 0)).to.deep.equal(V1);
  });

  it('two shapes inside one transaction are told apart by ordinal', () => {
    const h = new SchemaHistory();
    h.observe(1, V1, 100n, 0);
    expect(h.observe(1, V2, 500n, 1)).to.deep.equal(V1);
    expect(h.observe(1, V3, 500n, 4)).to.deep.equal(V2);
  });

  it('relations are tracked apart', () => {
    const h = new SchemaHistory();
    h.observe(1, V1, 100n, 0);
    expect(h.observe(2, V2, 200n, 0)).to.equal(undefined);
  });

  it('schemaColumns takes the key from the table key, not pgoutput flags, and names types', () => {
    const rel = { ...questions, keyColumns: ['question_text'] };
    const cols = schemaColumns(rel, (c) => `t${c.typeOid}`);
    expect(cols[0]).to.deep.equal({ name: 'id', type: 't23', key: false });
    expect(cols[1]).to.deep.equal({ name: 'question_text', type: 't25', key: true });
  });
});

describe('schema changes: the column diff', () => {
  it('names added, dropped and changed columns', () => {
    expect(diffColumns(V1, V2)).to.deep.equal({ added: ['note'], dropped: [], changed: [] });
    expect(diffColumns(V2, V1)).to.deep.equal({ added: [], dropped: ['note'], changed: [] });
    expect(diffColumns(V1, V3)).to.deep.equal({
      added: [], dropped: [],
      changed: [{ name: 'id', old: { type: 'integer', key: true }, new: { type: 'bigint', key: true } }],
    });
    const renamed = [id('id', 'integer', true), id('headline', 'character varying(10)')];
    expect(diffColumns(V1, renamed), 'a rename reads as dropped + added').to.deep.equal({ added: ['headline'], dropped: ['title'], changed: [] });
  });
});

describe('schema changes: the event', () => {
  const ctx = { source: '/s', typePrefix: 'orm', overrides: {}, table: questionsTable };

  it('default format: <prefix>.schema_change, table subject and partition key, old/new/diff data, a strict-valid CloudEvent', () => {
    const event = getEventFormat('default').build(schemaChangeOf(V1, V2), ctx);
    expect(event.type).to.equal('orm.schema_change');
    expect(event.subject).to.equal('DCE:polls.question');
    expect(event.partitionkey).to.equal('polls.question');
    expect(event.id).to.equal('00000000016B3748-00000003-schema');
    expect(event.sequence).to.equal(event.id);
    expect(event.time).to.equal(COMMIT_TIME.toISOString());
    expect(event.data).to.deep.equal({ db_table: 'polls_question', old: V1, new: V2, added: ['note'], dropped: [], changed: [] });
    expect(new CloudEvent({ ...event }, false).validate()).to.equal(true);
  });

  it('its id differs from the row change at the same position (which keeps its own id)', () => {
    const fmt = getEventFormat('default');
    const row = fmt.build(insertOf(questions, { id: 1 }), ctx);
    expect(row.id).to.equal('00000000016B3748-00000003');
    expect(fmt.build(schemaChangeOf(V1, V2), ctx).id).to.not.equal(row.id);
  });

  it('django format: django.orm.schema_change with the django extensions and the same data', () => {
    const event = getEventFormat('django').build(schemaChangeOf(V1, V3), { ...ctx, typePrefix: 'django.orm' });
    expect(event.type).to.equal('django.orm.schema_change');
    expect(event.subject).to.equal('DCE:polls.question');
    expect(event.djangoapp).to.equal('polls');
    expect(event.originid).to.equal(event.id);
    expect((event.data as unknown as { changed: unknown[] }).changed).to.have.length(1);
    expect(new CloudEvent({ ...event }, false).validate()).to.equal(true);
  });
});

describe('schema changes: delivery barrier (in-memory sink)', () => {
  const fmt = getEventFormat('default');
  const ctx = { source: '/s', typePrefix: 'orm', overrides: {}, table: questionsTable };

  it('holds the table\'s later rows until the schema change is delivered, then sends them in order', async () => {
    const sink = new MemorySink();
    const h = harness(sink, { policy: { maxInFlight: 8 }, buildEvent: (c) => fmt.build(c as TableChange, ctx) });
    h.engine.change({ ...insertOf(questions, { id: 1 }), commitLsn: 100n, ordinal: 0 });
    h.engine.change({ ...schemaChangeOf(V1, V2, 1), commitLsn: 100n });
    h.engine.change({ ...insertOf(questions, { id: 2 }), commitLsn: 100n, ordinal: 1 });
    h.engine.change({ ...insertOf(questions, { id: 3 }), commitLsn: 100n, ordinal: 2 });
    h.engine.commit(100n);
    await until('two sends', () => sink.waiting.length === 2);
    await settle();
    // Row 1 (old shape) and the schema change go at once; rows 2 and 3 (new shape) wait.
    expect(sink.waiting.map((c) => c.events[0].type)).to.deep.equal(['orm.post_save', 'orm.schema_change']);
    sink.answerNext();
    await settle();
    expect(sink.waiting, 'rows 2 and 3 still held').to.have.length(1);
    sink.answerNext();
    await until('rows 2 and 3', () => sink.waiting.length === 2);
    expect(sink.waiting.map((c) => c.events[0].subject)).to.deep.equal(['DCE:polls.question/2', 'DCE:polls.question/3']);
    while (sink.waiting.length) sink.answerNext();
    await until('acknowledged', () => h.acks.length === 1);
  });

  it('a dead-lettered schema change releases the rows too', async () => {
    const sink = new MemorySink();
    sink.respond = (call) => (call.events[0].type === 'orm.schema_change' ? { ok: false, error: badRequest() } : { ok: true });
    const h = harness(sink, { policy: { maxInFlight: 8 }, buildEvent: (c) => fmt.build(c as TableChange, ctx) });
    h.engine.change({ ...schemaChangeOf(V1, V2, 0), commitLsn: 100n });
    h.engine.change({ ...insertOf(questions, { id: 2 }), commitLsn: 100n, ordinal: 0 });
    h.engine.commit(100n);
    await until('acknowledged', () => h.acks.length === 1);
    expect(h.deadLettered.map((d) => d.event.type)).to.deep.equal(['orm.schema_change']);
    expect(sink.accepted.map((e) => e.subject)).to.deep.equal(['DCE:polls.question/2']);
  });

  it('a second schema change waits behind the first, and its rows behind it', async () => {
    const sink = new MemorySink();
    // Answered a little later, so that whatever is not held is in flight together.
    sink.respond = () => new Promise((resolve) => setTimeout(() => resolve({ ok: true }), 5));
    const h = harness(sink, { policy: { maxInFlight: 8 }, buildEvent: (c) => fmt.build(c as TableChange, ctx) });
    h.engine.change({ ...schemaChangeOf(V1, V2, 0), commitLsn: 100n });
    h.engine.change({ ...insertOf(questions, { id: 1 }), commitLsn: 100n, ordinal: 0 });
    h.engine.change({ ...schemaChangeOf(V2, V3, 1), commitLsn: 100n });
    h.engine.change({ ...insertOf(questions, { id: 2 }), commitLsn: 100n, ordinal: 1 });
    h.engine.commit(100n);
    await until('acknowledged', () => h.acks.length === 1);
    const sent = sink.calls.map((c) => c.events[0].id);
    const at = (id: string) => sent.indexOf(id);
    const [first, second] = ['0000000000000064-00000000-schema', '0000000000000064-00000001-schema'];
    expect(sent).to.have.length(4);
    expect(at(first)).to.equal(0);
    expect(at('0000000000000064-00000000'), 'row 1 after the first schema change').to.be.greaterThan(at(first));
    expect(at('0000000000000064-00000001'), 'row 2 after the second schema change').to.be.greaterThan(at(second));
    expect(at(second)).to.be.greaterThan(at(first));
  });
});
