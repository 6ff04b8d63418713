import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { estimateEventBytes } from '../../../src/delivery/budget';
import { RawJson } from '../../../src/events/json-text';
import { deleteOf, insertOf, questions, truncateOf, updateOf, type Change } from '../events/fixtures';

const event = new CloudEvent<unknown>({ id: 'id-1', source: '/src', type: 't' }, false);
const estimate = (c: Change) => estimateEventBytes(c, event);

describe('delivery budget: estimateEventBytes', () => {
  it('grows with the row it carries, by at least the length of its strings', () => {
    const small = estimate(insertOf(questions, { id: 1, question_text: 'q' }));
    const big = estimate(insertOf(questions, { id: 1, question_text: 'x'.repeat(10_000) }));
    expect(big - small).to.be.at.least(9_999);
    expect(big - small).to.be.below(10_100);
  });

  it('counts both rows of an update that carries the old one, and the old row of a delete', () => {
    const row = { id: 1, question_text: 'x'.repeat(5_000) };
    const insert = estimate(insertOf(questions, row));
    const update = estimate(updateOf(questions, row, row));
    expect(update - insert).to.be.at.least(5_000);
    expect(estimate(deleteOf(questions, row, false))).to.equal(insert);
  });

  it('counts json and array values by their JSON text, and survives values JSON cannot hold', () => {
    const plain = estimate(insertOf(questions, { id: 1, question_text: null }));
    const json = estimate(insertOf(questions, { id: 1, question_text: { tags: ['a'.repeat(1_000)] } }));
    expect(json - plain).to.be.at.least(1_000);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(estimate(insertOf(questions, { id: 1, question_text: cyclic }))).to.equal(plain);
  });

  it('sizes a json number kept exact (RawJson) by its digits, alone or nested', () => {
    const plain = estimate(insertOf(questions, { id: 1, question_text: null }));
    const digits = '9'.repeat(5_000); // beyond a double: JSON.stringify would write null
    const alone = estimate(insertOf(questions, { id: 1, question_text: new RawJson(digits) }));
    const nested = estimate(insertOf(questions, { id: 1, question_text: { n: [new RawJson(digits)] } }));
    expect(alone - plain).to.be.at.least(4_900);
    expect(nested - plain).to.be.at.least(4_900);
  });

  it('sizes a truncate by its attributes alone', () => {
    expect(estimate(truncateOf(questions))).to.be.within(256, 300);
  });
});
