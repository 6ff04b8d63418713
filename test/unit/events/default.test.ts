import { expect } from 'chai';
import { HTTP, type CloudEvent } from 'cloudevents';
import { defaultFormat } from '../../../src/events/default';
import type { EventContext, EventData } from '../../../src/events/format';
import {
  auditLog,
  deleteOf,
  insertOf,
  orderLines,
  plain,
  questionRow,
  questions,
  questionsTable,
  tableOf,
  truncateOf,
  updateOf,
} from './fixtures';

// commitLsn 0x16B3748, ordinal 3: 16 hex digits of the LSN, then 8 digits of the ordinal.
const ID = '00000000016B3748-00000003';
const TIME = '2020-12-01T09:43:00.250Z';

function ctx(over: Partial<EventContext> = {}): EventContext {
  return { source: '/pg-cloudevents/app', typePrefix: 'orm', overrides: {}, table: questionsTable, ...over };
}

const common = {
  specversion: '1.0',
  id: ID,
  source: '/pg-cloudevents/app',
  time: TIME,
  datacontenttype: 'application/json',
  app: 'polls',
  model: 'question',
  sequence: ID,
};

describe('events/default format', () => {
  it('insert: post_save, created, every attribute and the data exactly', () => {
    const event = defaultFormat.build(insertOf(questions, questionRow), ctx());
    expect(plain(event)).to.deep.equal({
      ...common,
      type: 'orm.post_save',
      subject: 'DCE:polls.question/22',
      partitionkey: 'polls.question/22',
      data: {
        data: questionRow,
        signal_kwargs: { created: true, update_fields: null, raw: false, using: 'default' },
        db_table: 'polls_question',
      },
    });
    expect(event.validate()).to.equal(true);
  });

  it('update with the whole old row: update_fields lists the changed columns, old is sent', () => {
    const old = { ...questionRow, question_text: 'How do you do?', meta: { tags: ['a'], votes: 1 } };
    // Same content in a different object: unchanged.
    const next = { ...questionRow, pub_date: '2020-12-01T09:43:00Z', meta: { tags: ['a', 'b'], votes: 1 } };
    const event = defaultFormat.build(updateOf(questions, next, old, false), ctx());
    expect(plain(event)).to.deep.equal({
      ...common,
      type: 'orm.post_save',
      subject: 'DCE:polls.question/22',
      partitionkey: 'polls.question/22',
      data: {
        data: next,
        signal_kwargs: { created: false, update_fields: ['question_text', 'meta'], raw: false, using: 'default' },
        db_table: 'polls_question',
        old,
      },
    });
  });

  it('update with the whole old row and nothing changed: update_fields is []', () => {
    const event = defaultFormat.build(updateOf(questions, questionRow, { ...questionRow }, false), ctx());
    expect(event.data!.signal_kwargs.update_fields).to.deep.equal([]);
  });

  it('update without the old row: update_fields null, no old', () => {
    const event = defaultFormat.build(updateOf(questions, questionRow), ctx());
    const data = plain(event).data as EventData;
    expect(data.signal_kwargs).to.deep.equal({ created: false, update_fields: null, raw: false, using: 'default' });
    expect(data).to.not.have.property('old');
    expect(data.data).to.deep.equal(questionRow);
  });

  it('update that changed the key: old key sent, update_fields null, subject is the new key', () => {
    const next = { ...questionRow, id: 23 };
    const event = defaultFormat.build(updateOf(questions, next, { id: 22 }, true), ctx());
    expect(event.subject).to.equal('DCE:polls.question/23');
    expect(event.data!.old).to.deep.equal({ id: 22 });
    expect(event.data!.signal_kwargs.update_fields).to.equal(null);
  });

  it('unchanged TOAST columns are listed and never counted as changed', () => {
    const { question_text: _omitted, ...sent } = questionRow;
    const old = { ...questionRow, id: 22, meta: { votes: 2 } };
    const event = defaultFormat.build(updateOf(questions, sent, old, false, ['question_text']), ctx());
    expect(event.data!.unchanged_toast_columns).to.deep.equal(['question_text']);
    expect(event.data!.signal_kwargs.update_fields).to.deep.equal(['meta']);
    expect(event.data!.data).to.not.have.property('question_text');
  });

  it('delete with the key only: post_delete, data is the old key, kwargs only using', () => {
    const event = defaultFormat.build(deleteOf(questions, { id: 22 }), ctx());
    expect(plain(event)).to.deep.equal({
      ...common,
      type: 'orm.post_delete',
      subject: 'DCE:polls.question/22',
      partitionkey: 'polls.question/22',
      data: { data: { id: 22 }, signal_kwargs: { using: 'default' }, db_table: 'polls_question' },
    });
  });

  it('truncate: post_truncate, table-level subject, data null, TRUNCATE options in kwargs', () => {
    const event = defaultFormat.build(truncateOf(questions, true, false), ctx());
    expect(plain(event)).to.deep.equal({
      ...common,
      type: 'orm.post_truncate',
      subject: 'DCE:polls.question',
      partitionkey: 'polls.question',
      data: {
        data: null,
        signal_kwargs: { using: 'default', cascade: true, restart_identity: false },
        db_table: 'polls_question',
      },
    });
  });

  it('composite key: values joined with "," in key order, not column order', () => {
    const row = { line: 2, sku: 'X-1', order_id: 9007199254740993n.toString() };
    const event = defaultFormat.build(insertOf(orderLines, row), ctx({ table: tableOf(orderLines) }));
    expect(event.subject).to.equal('DCE:shop.order_line/9007199254740993,2');
    expect(event.partitionkey).to.equal('shop.order_line/9007199254740993,2');
    expect(event.app).to.equal('shop');
    expect(event.model).to.equal('order_line');
    expect(event.data!.db_table).to.equal('order_line');
  });

  it('table without a key: subject and partitionkey name the table only', () => {
    const event = defaultFormat.build(insertOf(auditLog, { message: 'hi' }), ctx({ table: tableOf(auditLog) }));
    expect(event.subject).to.equal('DCE:public.audit_log');
    expect(event.partitionkey).to.equal('public.audit_log');
  });

  it('app and model come from the table configuration', () => {
    const table = { ...questionsTable, app: 'survey', model: 'poll' };
    const event = defaultFormat.build(insertOf(questions, questionRow), ctx({ table }));
    expect(event.subject).to.equal('DCE:survey.poll/22');
    expect([event.app, event.model, event.partitionkey]).to.deep.equal(['survey', 'poll', 'survey.poll/22']);
    expect(event.data!.db_table).to.equal('polls_question');
  });

  it('type prefix is configurable', () => {
    const event = defaultFormat.build(deleteOf(questions, { id: 1 }), ctx({ typePrefix: 'com.example.db' }));
    expect(event.type).to.equal('com.example.db.post_delete');
  });

  it('backfill: raw is true', () => {
    const event = defaultFormat.build(insertOf(questions, questionRow), ctx({ backfill: true }));
    expect(event.data!.signal_kwargs).to.deep.equal({ created: true, update_fields: null, raw: true, using: 'default' });
  });

  it('overrides add extensions and may replace app/model, but never id/source/type/sequence', () => {
    const overrides = { team: 'payments', tier: 2, beta: true, app: 'billing' };
    const event = defaultFormat.build(insertOf(questions, questionRow), ctx({ overrides }));
    expect([event.team, event.tier, event.beta, event.app]).to.deep.equal(['payments', 2, true, 'billing']);
    // Defensive: an overrides object that skipped parseCeOverrides still cannot forge these.
    const forged = { id: 'x', source: 'evil', type: 'x', specversion: '0.3', sequence: 'x', partitionkey: 'x' };
    const safe = defaultFormat.build(insertOf(questions, questionRow), ctx({ overrides: forged }));
    expect([safe.id, safe.source, safe.type, safe.specversion, safe.sequence, safe.partitionkey]).to.deep.equal([
      ID,
      '/pg-cloudevents/app',
      'orm.post_save',
      '1.0',
      ID,
      'polls.question/22',
    ]);
  });

  it('is deterministic: the same change gives the same event, id included', () => {
    const a = defaultFormat.build(insertOf(questions, questionRow), ctx());
    const b = defaultFormat.build(insertOf(questions, { ...questionRow }), ctx());
    expect(a.toString()).to.equal(b.toString());
  });

  it('different positions in the stream give different, string-sortable ids', () => {
    const first = insertOf(questions, questionRow);
    const later = { ...first, ordinal: 10 };
    const nextTx = { ...first, commitLsn: 0x1_0000_0000n, ordinal: 0 };
    const ids = [first, later, nextTx].map((c) => defaultFormat.build(c, ctx()).id);
    expect(new Set(ids).size).to.equal(3);
    expect([...ids].sort()).to.deep.equal(ids);
  });

  it('non-ASCII values survive the SDK HTTP binary round trip and validate', () => {
    const row = { ...questionRow, id: 'café-☕', question_text: 'Wie geht’s? 你好 🚀 \u0000' };
    const rel = { ...questions, columns: questions.columns.map((c) => (c.name === 'id' ? { ...c, typeOid: 25 } : c)) };
    const event = defaultFormat.build(insertOf(rel, row), ctx({ overrides: { team: 'ünï' } }));
    const message = HTTP.binary(event);
    expect(message.headers['ce-id']).to.equal(ID);
    expect(message.headers['ce-partitionkey']).to.equal('polls.question/café-☕');
    // The body crosses the wire as UTF-8 bytes; the receiver decodes them back to text.
    const wire = { headers: message.headers, body: Buffer.from(message.body as string, 'utf8').toString('utf8') };
    const back = HTTP.toEvent(wire) as CloudEvent<EventData>;
    expect(back.validate()).to.equal(true);
    expect(back.subject).to.equal('DCE:polls.question/café-☕');
    expect(back.team).to.equal('ünï');
    expect(back.data).to.deep.equal(event.data);
    expect(back.data!.data!.question_text).to.equal('Wie geht’s? 你好 🚀 \u0000');
    expect(back.data!.data!.id).to.equal('café-☕');
  });

  it('source is a valid URI-reference even for odd database names', () => {
    expect(defaultFormat.defaultSource('my db/ü')).to.equal('/pg-cloudevents/my%20db%2F%C3%BC');
    expect(defaultFormat.defaultTypePrefix).to.equal('orm');
  });
});
