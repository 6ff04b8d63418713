import { expect } from 'chai';
import { defaultPartitionKey } from '../../../src/delivery/partitions';
import { getEventFormat } from '../../../src/events';
import { auditLog, deleteOf, insertOf, orderLines, questions, questionsTable, tableOf, truncateOf, updateOf } from '../events/fixtures';
import { harness, MemorySink, settle, until } from './engine-harness';
import type { TableChange } from '../../../src/sources/change';

const ctx = { source: '/s', typePrefix: 'orm', overrides: {}, table: questionsTable };
const django = getEventFormat('django');
const dflt = getEventFormat('default');

describe('DeliveryEngine partition keys (in-memory sink)', () => {
  it('uses the partitionkey extension of the default format', () => {
    const c = insertOf(questions, { id: 22 });
    expect(defaultPartitionKey(dflt.build(c, ctx), c)).to.equal('polls.question/22');
  });

  it('falls back to <schema>.<table>/<primary key> for the django format, which has no partitionkey', () => {
    const ins = insertOf(questions, { id: 22, question_text: 'a' });
    const upd = updateOf(questions, { id: 22, question_text: 'b' });
    const del = deleteOf(questions, { id: 22 });
    const other = insertOf(questions, { id: 23 });
    const keys = [ins, upd, del, other].map((c) => {
      const event = django.build(c, ctx);
      expect(event.partitionkey).to.equal(undefined);
      return defaultPartitionKey(event, c);
    });
    expect(keys).to.deep.equal([
      'public.polls_question/22', 'public.polls_question/22', 'public.polls_question/22', 'public.polls_question/23',
    ]);
    const composite = insertOf(orderLines, { order_id: 7, line: 2 });
    expect(defaultPartitionKey(django.build(composite, { ...ctx, table: tableOf(orderLines) }), composite)).to.equal('shop.order_line/7,2');
  });

  it('falls back to <schema>.<table> for tables without a key and for truncates', () => {
    const c = insertOf(auditLog, { message: 'x' });
    expect(defaultPartitionKey(django.build(c, { ...ctx, table: tableOf(auditLog) }), c)).to.equal('public.audit_log');
    const t = truncateOf(questions);
    expect(defaultPartitionKey(django.build(t, ctx), t)).to.equal('public.polls_question');
  });

  it('delivers django-format rows in parallel and one row in order', async () => {
    const sink = new MemorySink();
    const h = harness(sink, { policy: { maxInFlight: 4 }, buildEvent: (c) => django.build(c as TableChange, ctx) });
    h.engine.change({ ...insertOf(questions, { id: 1 }), commitLsn: 100n, ordinal: 0 });
    h.engine.change({ ...updateOf(questions, { id: 1, question_text: 'b' }), commitLsn: 100n, ordinal: 1 });
    h.engine.change({ ...insertOf(questions, { id: 2 }), commitLsn: 100n, ordinal: 2 });
    h.engine.commit(100n);
    await until('two rows in flight', () => sink.waiting.length === 2);
    await settle();
    expect(sink.waiting.map((c) => c.events[0].subject)).to.deep.equal(['DCE:polls.question/1', 'DCE:polls.question/2']);
    while (sink.waiting.length) sink.answerNext();
    await until('the second change of row 1', () => sink.waiting.length === 1);
    expect(sink.waiting[0].events[0].subject).to.equal('DCE:polls.question/1');
    sink.answerNext();
    await until('acknowledged', () => h.acks.length === 1);
  });
});
