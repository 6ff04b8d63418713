import { expect } from 'chai';
import { HTTP, type CloudEvent } from 'cloudevents';
import { djangoFormat } from '../../../src/events/django';
import type { EventContext, EventData } from '../../../src/events/format';
import { resolveSource } from '../../../src/events/index';
import {
  auditLog,
  deleteOf,
  insertOf,
  OID,
  orderLines,
  plain,
  questionRow,
  questions,
  questionsTable,
  relation,
  tableOf,
  truncateOf,
  updateOf,
} from './fixtures';

const ID = '00000000016B3748-00000003';

function ctx(over: Partial<EventContext> = {}): EventContext {
  const source = resolveSource({ format: djangoFormat, databaseName: 'app' });
  return { source, typePrefix: djangoFormat.defaultTypePrefix, overrides: {}, table: questionsTable, ...over };
}

// One column per type whose Python str() differs from the JSON value.
const c = (name: string, typeOid: number, isKey = false) => ({ name, typeOid, typeMod: -1, isKey });
const everything = relation('public', 'polls_choice', [
  c('id', OID.int8, true),
  c('label', OID.text),
  c('votes', OID.int4),
  c('active', OID.bool),
  c('note', OID.text),
  c('price', OID.numeric),
  c('ratio', OID.float8),
  c('whole', OID.float8),
  c('created', OID.timestamptz),
  c('precise', OID.timestamptz),
  c('meta', OID.jsonb),
  c('ids', OID.int4Array),
  c('blob', OID.bytea),
  c('token', OID.uuid),
]);
const everythingRow = {
  id: 7,
  label: 'Yes – sí',
  votes: 3,
  active: true,
  note: null,
  price: '12.50',
  ratio: 0.30000000000000004,
  whole: 3,
  created: '2020-12-01T09:43:00Z',
  precise: '2020-12-01T09:43:00.123456Z',
  meta: { tags: ['a', 'b'], votes: 1, ok: true, none: null, ratio: 0.5, quote: "it's" },
  ids: [1, 2, 3],
  blob: Buffer.from([0, 1, 0x61, 0x62]).toString('base64'),
  token: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
};
// Expected values printed by CPython 3: str(value) for the type Django/psycopg2 would build.
const everythingStr = {
  id: '7',
  label: 'Yes – sí',
  votes: '3',
  active: 'True',
  note: 'None',
  price: '12.50',
  ratio: '0.30000000000000004',
  whole: '3.0',
  created: '2020-12-01 09:43:00+00:00',
  precise: '2020-12-01 09:43:00.123456+00:00',
  meta: "{'tags': ['a', 'b'], 'votes': 1, 'ok': True, 'none': None, 'ratio': 0.5, 'quote': \"it's\"}",
  ids: '[1, 2, 3]',
  blob: "b'\\x00\\x01ab'",
  token: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
};

describe('events/django format (django-signals-cloudevents compatible)', () => {
  it('insert: attributes as django-signals-cloudevents sends them', () => {
    const event = djangoFormat.build(insertOf(questions, questionRow), ctx());
    expect(plain(event)).to.deep.equal({
      specversion: '1.0',
      id: ID,
      source: 'django-orm',
      type: 'django.orm.post_save',
      subject: 'DCE:polls.question/22',
      time: '2020-12-01T09:43:00.250Z',
      datacontenttype: 'application/json',
      djangoapp: 'polls',
      djangomodel: 'question',
      originid: ID,
      data: {
        data: {
          id: '22',
          question_text: 'How are you?',
          pub_date: '2020-12-01 09:43:00+00:00',
          meta: "{'tags': ['a', 'b'], 'votes': 1}",
        },
        signal_kwargs: { created: true, update_fields: null, raw: false, using: 'default' },
        db_table: 'polls_question',
      },
    });
    expect(event.validate()).to.equal(true);
  });

  it('every column value is rendered as Python str() would', () => {
    const event = djangoFormat.build(insertOf(everything, everythingRow), ctx({ table: tableOf(everything) }));
    expect(event.data!.data).to.deep.equal(everythingStr);
    for (const value of Object.values(event.data!.data!)) expect(value).to.be.a('string');
    expect(event.subject).to.equal('DCE:public.polls_choice/7');
  });

  it('update: post_save with created false; no old, update_fields null as the original sent', () => {
    const old = { ...questionRow, question_text: 'Before' };
    const event = djangoFormat.build(updateOf(questions, questionRow, old, false), ctx());
    expect(event.type).to.equal('django.orm.post_save');
    expect(plain(event).data).to.deep.equal({
      data: {
        id: '22',
        question_text: 'How are you?',
        pub_date: '2020-12-01 09:43:00+00:00',
        meta: "{'tags': ['a', 'b'], 'votes': 1}",
      },
      signal_kwargs: { created: false, update_fields: null, raw: false, using: 'default' },
      db_table: 'polls_question',
    });
  });

  it('delete: post_delete, signal_kwargs only using, old row rendered', () => {
    const event = djangoFormat.build(deleteOf(questions, { id: 22 }), ctx());
    expect(event.type).to.equal('django.orm.post_delete');
    expect(event.subject).to.equal('DCE:polls.question/22');
    expect(plain(event).data).to.deep.equal({
      data: { id: '22' },
      signal_kwargs: { using: 'default' },
      db_table: 'polls_question',
    });
  });

  it('truncate: like the original event without an instance (no data key)', () => {
    const event = djangoFormat.build(truncateOf(questions), ctx());
    expect(event.type).to.equal('django.orm.post_truncate');
    expect(event.subject).to.equal('DCE:polls.question');
    expect(plain(event).data).to.deep.equal({
      signal_kwargs: { using: 'default', cascade: false, restart_identity: true },
      db_table: 'polls_question',
    });
  });

  it('carries only the original extensions (no app/model/sequence/partitionkey) plus overrides', () => {
    const event = djangoFormat.build(insertOf(questions, questionRow), ctx({ overrides: { team: 'x', originid: 'forged' } }));
    const attrs = plain(event);
    for (const name of ['app', 'model', 'sequence', 'partitionkey']) expect(attrs).to.not.have.property(name);
    expect(attrs.team).to.equal('x');
    expect(attrs.originid).to.equal(attrs.id);
  });

  it('composite keys and key-less tables, backfill raw, configured app/model and source', () => {
    const row = { line: 2, sku: 'X', order_id: 10 };
    const composite = djangoFormat.build(insertOf(orderLines, row), ctx({ table: tableOf(orderLines), backfill: true }));
    expect(composite.subject).to.equal('DCE:shop.order_line/10,2');
    expect(composite.data!.signal_kwargs.raw).to.equal(true);
    const noKey = djangoFormat.build(insertOf(auditLog, { message: 'm' }), ctx({ table: tableOf(auditLog) }));
    expect(noKey.subject).to.equal('DCE:public.audit_log');
    const table = { ...questionsTable, app: 'survey', model: 'poll' };
    const source = resolveSource({ kSource: 'orders-db', format: djangoFormat, databaseName: 'app' });
    const custom = djangoFormat.build(insertOf(questions, questionRow), ctx({ table, source }));
    expect([custom.djangoapp, custom.djangomodel, custom.subject, custom.source]).to.deep.equal([
      'survey',
      'poll',
      'DCE:survey.poll/22',
      'orders-db',
    ]);
  });

  it('round-trips through the SDK HTTP binary mode and validates', () => {
    const event = djangoFormat.build(insertOf(everything, everythingRow), ctx({ table: tableOf(everything) }));
    const message = HTTP.binary(event);
    expect(message.headers['ce-djangoapp']).to.equal('public');
    expect(message.headers['ce-originid']).to.equal(ID);
    const back = HTTP.toEvent(message) as CloudEvent<EventData>;
    expect(back.validate()).to.equal(true);
    expect(back.data).to.deep.equal(event.data);
  });
});
