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

describe('createEvent builds what the SDK constructor builds', () => {
  const overrides = parseCeOverrides('{"extensions":{"zone":3,"region":"eu"}}');
  for (const name of ['default', 'django'] as const) {
    it(`${name}: same prototype, own keys in the same order, same values, frozen`, () => {
      const format = getEventFormat(name);
      for (const change of [insertOf(questions, questionRow), updateOf(questions, questionRow, questionRow), deleteOf(questions, { id: 22 }), truncateOf(questions)]) {
        const ctx: EventContext = { source: '/pg-cloudevents/app', typePrefix: 'orm', overrides, table: questionsTable };
        const ours = format.build(change, ctx);
        const attributes = Object.fromEntries(Object.entries(ours).filter(([, v]) => v !== undefined));
        const sdk = new CloudEvent(attributes, false);
        expect(Object.getPrototypeOf(ours)).to.equal(CloudEvent.prototype);
        expect(ours).to.be.instanceOf(CloudEvent);
        expect(Object.keys(ours)).to.deep.equal(Object.keys(sdk));
        expect({ ...ours }).to.deep.equal({ ...sdk });
        expect(ours.toString()).to.equal(sdk.toString());
        expect(Object.isFrozen(ours)).to.equal(true);
        expect(ours.cloneWith({ subject: 'other' }).subject).to.equal('other');
      }
    });
  }
});

describe('K_CE_OVERRIDES may not shadow the SDK event methods', () => {
  for (const name of ['validate', 'emit', 'constructor']) {
    it(`refuses an extension named ${name}, naming it`, () => {
      expect(() => parseCeOverrides(`{"extensions":{"${name}":"x"}}`)).to.throw(`extensions.${name}`);
    });
  }
});
