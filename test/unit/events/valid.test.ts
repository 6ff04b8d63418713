import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { getEventFormat } from '../../../src/events';
import type { EventContext } from '../../../src/events/format';
import { parseCeOverrides } from '../../../src/events/overrides';
import { auditLog, deleteOf, insertOf, orderLines, questionRow, questions, questionsTable, tableOf, truncateOf, updateOf } from './fixtures';

/**
 * Formats build their events without the SDK's per-event validation (see createEvent): this is
 * where every kind of event of every format is validated strictly instead, with overrides, an
 * unusual source and a table without a key.
 */
describe('event formats: every event they build is a valid CloudEvent', () => {
  const overrides = parseCeOverrides('{"extensions":{"cluster":"eu-1","shard":7,"canary":false}}');
  const changes = [
    insertOf(questions, questionRow),
    updateOf(questions, { ...questionRow, question_text: 'new' }, questionRow),
    updateOf(questions, questionRow, { id: 21 }, true),
    deleteOf(questions, { id: 22 }),
    truncateOf(questions, true, false),
    insertOf(orderLines, { order_id: 1, line_no: 2, sku: 'é ü', qty: 3 }),
    insertOf(auditLog, { message: 'no key at all' }, []),
  ];

  for (const name of ['default', 'django'] as const) {
    it(`${name}: insert, updates, delete, truncate, composite and missing keys`, () => {
      const format = getEventFormat(name);
      for (const change of changes) {
        const ctx: EventContext = {
          source: 'urn:pg-cloudevents:db%20one',
          typePrefix: format.defaultTypePrefix,
          overrides,
          table: change.relation === questions ? questionsTable : tableOf(change.relation),
        };
        const event = format.build(change, ctx);
        expect(event.validate(), `${name} ${change.kind} of ${change.relation.table}`).to.equal(true);
        // Strict construction of the same attributes agrees.
        expect(() => new CloudEvent(JSON.parse(JSON.stringify(event)) as Record<string, unknown>, true)).not.to.throw();
        expect(event).to.include({ cluster: 'eu-1', shard: 7, canary: false });
      }
    });
  }
});
