import { expect } from 'chai';
import { rejected, thrown } from './errors';
import { ConfigError, DeliveryError } from '../../../../src/errors';
import { RawJson } from '../../../../src/events/json-text';
import { triggerContext } from '../../../../src/routing/triggers/context';
import { compileTransform, compileWhen, ExpressionError, expressionInput } from '../../../../src/routing/triggers/expressions';
import { deleted, inserted, truncated, updated } from './events';

const when = (expression: string, event = inserted()) => compileWhen(expression, 'triggers.big.when').evaluate(triggerContext(event));
const transform = (expression: string, event = inserted()) => compileTransform(expression, 'triggers.big.transform').evaluate(triggerContext(event));

describe('trigger expressions (JSONata when / transform)', () => {
  describe('input', () => {
    it('data and instance are the row, with old, event (attributes, extensions) and signal_kwargs', async () => {
      const event = updated({ quantity: 13 });
      expect(await transform('$keys($)', event)).to.deep.equal(['data', 'instance', 'old', 'event', 'signal_kwargs']);
      expect(await transform('[data.quantity, instance.quantity, old.quantity, event.type, event.tenant, signal_kwargs.created]', event)).to.deep.equal([
        13, 13, 12, 'orm.post_save', 'acme', false,
      ]);
      // A column named like a root is data.<column>; event is always the attributes.
      expect(await transform('[data.event, event.model]', event)).to.deep.equal(['launch', 'orders']);
      expect(await transform('$exists(event.data)', event)).to.equal(false);
    });

    it('is built once per change, however many expressions read it', () => {
      const context = triggerContext(inserted());
      expect(expressionInput(context)).to.equal(expressionInput(context));
      expect(expressionInput(triggerContext(inserted()))).to.not.equal(expressionInput(context));
    });

    it('a delete reads the deleted row as data; a truncate has no row', async () => {
      expect(await transform('data.id', deleted())).to.equal(7);
      expect(await transform('$keys($)', truncated())).to.deep.equal(['event', 'signal_kwargs']);
    });

    it('exact numbers become JavaScript numbers inside expressions; the event keeps its RawJson', async () => {
      const event = inserted();
      expect(await transform('data.meta.serial', event)).to.equal(12345678901234567000);
      expect(await when('data.meta.ratio = 1.5', event)).to.equal(true);
      const input = expressionInput(triggerContext(event)) as { data: { meta: { serial: unknown } } };
      expect(input.data.meta.serial).to.equal(12345678901234567890);
      // Beyond a double's range: Infinity inside (it compares), no JSON number out of a transform.
      const huge = inserted({ meta: { big: new RawJson('1e400') } });
      expect(await when('data.meta.big > 1e300', huge)).to.equal(true);
      expect((await rejected(transform('{"big": data.meta.big}', huge))).message).to.include('produced Infinity, which is not a JSON number');
      expect(((event.data as { data: { meta: { serial: unknown } } }).data.meta.serial)).to.be.instanceOf(RawJson);
    });
  });

  describe('when', () => {
    it('the example: a new order of more than ten', async () => {
      const expression = 'signal_kwargs.created and data.quantity > 10';
      expect(await when(expression, inserted())).to.equal(true);
      expect(await when(expression, inserted({ quantity: 5 }))).to.equal(false);
      expect(await when(expression, updated())).to.equal(false);
    });

    it('compares with the previous row', async () => {
      expect(await when('data.quantity != old.quantity', updated({ quantity: 13 }))).to.equal(true);
      expect(await when('data.quantity != old.quantity', updated())).to.equal(false);
      // No old on an insert: the comparison has no result, which is false.
      expect(await when('data.quantity != old.quantity', inserted())).to.equal(false);
    });

    it('a non-boolean result counts as JSONata\'s $boolean says; no result is false', async () => {
      const cases: Array<[string, boolean]> = [
        ['data.customer_name', true],
        ['""', false],
        ['0', false],
        ['data.quantity', true],
        ['data.note', false],
        ['[]', false],
        ['[0, 1]', true],
        ['{}', false],
        ['data.meta', true],
        ['data.nothing', false],
        ['function($x) { $x }', false],
      ];
      for (const [expression, expected] of cases) expect(await when(expression), expression).to.equal(expected);
    });
  });

  describe('transform', () => {
    it('its result is the payload, as plain JSON', async () => {
      expect(await transform('{ "order": data.id, "total": data.quantity * 2, "who": $uppercase(data.customer_name) }')).to.deep.equal({
        order: 7, total: 24, who: 'ADA',
      });
      const tags = await transform('data.meta.tags.$uppercase($)');
      expect(tags).to.deep.equal(['GIFT', 'RUSH']);
      expect(Object.keys(tags as object)).to.deep.equal(['0', '1']);
    });

    it('no result, or a function, is an error for the delivery', async () => {
      const none = await rejected(transform('data.nothing'));
      expect(none).to.be.instanceOf(ExpressionError);
      expect(none.message).to.include('triggers.big.transform: the transform produced no value');
      expect((await rejected(transform('function($x) { $x }'))).message).to.include('produced a function');
    });
  });

  describe('errors', () => {
    it('a syntax error is a configuration error naming the key path, position and JSONata\'s message', () => {
      const err = thrown(() => compileWhen('data.quantity > ', 'triggers.big.when'));
      expect(err).to.be.instanceOf(ConfigError);
      expect(err.message).to.match(/triggers\.big\.when: JSONata syntax error at position \d+: .+ \(S0\d+\) in "data\.quantity > "/);
      expect(thrown(() => compileTransform('', 'triggers.big.transform')).message).to.include('triggers.big.transform: must be a JSONata expression');
      expect(thrown(() => compileWhen(3 as unknown as string, 'triggers.big.when'))).to.be.instanceOf(ConfigError);
    });

    it('an evaluation error is final for the delivery and names the rule key', async () => {
      const err = await rejected(when('data.customer_name + 1'));
      expect(err).to.be.instanceOf(ExpressionError);
      expect(err).to.be.instanceOf(DeliveryError);
      expect((err as DeliveryError).retriable).to.equal(false);
      expect(err.message).to.match(/^triggers\.big\.when: .+ \(JSONata T2001 at position \d+\)$/);
      expect((err as ExpressionError).detail).to.deep.equal({ key: 'triggers.big.when', jsonata: 'T2001' });
    });

    it('an endless loop is cut short by the time bound', async () => {
      const loop = compileTransform('($f := function() { $f() }; $f())', 'triggers.big.transform', { timeoutMs: 50, maxDepth: 1000 });
      const err = await rejected(loop.evaluate(triggerContext(inserted())));
      expect(err).to.be.instanceOf(ExpressionError);
      expect(err.message).to.include('triggers.big.transform: evaluation took longer than 50 ms (the expression may loop) (JSONata D1012');
    });

    it('endless recursion is cut short by the depth bound', async () => {
      const deep = compileWhen('($f := function($n) { 1 + $f($n) }; $f(1) > 0)', 'triggers.big.when', { timeoutMs: 60000, maxDepth: 100 });
      const err = await rejected(deep.evaluate(triggerContext(inserted())));
      expect(err).to.be.instanceOf(ExpressionError);
      expect(err.message).to.include('triggers.big.when: evaluation nested deeper than 100 steps');
    });

    it('the default bounds stop an endless loop too', async () => {
      const err = await rejected(transform('($f := function() { $f() }; $f())'));
      expect(err.message).to.include('evaluation took longer than 1000 ms');
    });
  });
});
