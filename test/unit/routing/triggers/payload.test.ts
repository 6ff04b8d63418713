import { expect } from 'chai';
import { thrown } from './errors';
import { ConfigError, DeliveryError } from '../../../../src/errors';
import { RawJson, stringifyJson } from '../../../../src/events/json-text';
import { MISSING, triggerContext } from '../../../../src/routing/triggers/context';
import { compilePayload, PayloadError } from '../../../../src/routing/triggers/payload';
import { deleted, orderRow, djangoInserted, inserted, truncated, updated } from './events';

const render = (template: unknown, event = inserted()) => compilePayload(template, 'payload').render(triggerContext(event));

describe('trigger payload templates', () => {
  describe('typing', () => {
    it('a leaf that is one placeholder keeps the value\'s JSON type', () => {
      const out = render({ q: '{{ quantity }}', n: '{{note}}', tags: '{{ meta.tags }}', meta: '{{ meta }}', name: '{{ customer_name }}' });
      expect(out).to.deep.equal({ q: 12, n: null, tags: ['gift', 'rush'], meta: orderRow().meta, name: 'Ada' });
      expect((out as { q: unknown }).q).to.be.a('number');
    });

    it('exact numbers stay exact, alone and inside objects', () => {
      const out = render({ serial: '{{ meta.serial }}', meta: '{{ meta }}', text: 'serial {{ meta.serial }} ratio {{ meta.ratio }}' });
      expect((out as { serial: unknown }).serial).to.be.instanceOf(RawJson);
      expect(stringifyJson(out)).to.equal(
        '{"serial":12345678901234567890,"meta":{"tags":["gift","rush"],"serial":12345678901234567890,"ratio":1.50},' +
          '"text":"serial 12345678901234567890 ratio 1.50"}',
      );
    });

    it('mixed text: strings as they are, anything else as its compact JSON text, null as null', () => {
      expect(render('Order {{ id }} for {{ customer_name }}: {{ meta.tags }} note={{ note }} created={{ signal_kwargs.created }}')).to.equal(
        'Order 7 for Ada: ["gift","rush"] note=null created=true',
      );
    });

    it('no HTML escaping, and whitespace inside the braces is free', () => {
      expect(render('{{customer_name}}|{{  customer_name\n}}', inserted({ customer_name: '<b>"Ada" & co</b>' }))).to.equal(
        '<b>"Ada" & co</b>|<b>"Ada" & co</b>',
      );
    });

    it('renders nested objects and arrays, leaves constants as they are', () => {
      expect(render({ order: { id: '{{ id }}', lines: ['{{ quantity }}', 2, true, null, 'x'] }, v: 1.5 })).to.deep.equal({
        order: { id: 7, lines: [12, 2, true, null, 'x'] },
        v: 1.5,
      });
    });

    it('a constant payload is rendered as compiled, frozen so no delivery can change the next one\'s', () => {
      const payload = compilePayload({ a: [1, { b: 'x' }] }, 'payload');
      const out = payload.render(triggerContext(inserted()));
      expect(out).to.deep.equal({ a: [1, { b: 'x' }] });
      expect(Object.isFrozen((out as { a: unknown[] }).a[1])).to.equal(true);
      expect(payload.paths).to.deep.equal([]);
    });

    it('the configuration\'s own template object is not frozen or shared', () => {
      const template = { a: { b: 1 } };
      compilePayload(template, 'payload');
      expect(Object.isFrozen(template.a)).to.equal(false);
    });

    it('a string payload that is not JSON renders to a string (the transport decides how to send it)', () => {
      expect(render('order {{ id }} shipped')).to.equal('order 7 shipped');
    });

    it('\\{{ and \\}} are literal braces', () => {
      expect(render('\\{{ id \\}} is {{ id }}')).to.equal('{{ id }} is 7');
    });

    it('a __proto__ key stays an own member of the rendered payload', () => {
      const template = JSON.parse('{"__proto__": {"x": "{{ id }}"}}') as unknown;
      const out = render(template) as Record<string, unknown>;
      expect(Object.getPrototypeOf(out)).to.equal(Object.prototype);
      expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).to.deep.equal({ x: 7 });
    });

    it('without a template the payload is the event\'s data', () => {
      const event = inserted();
      const payload = compilePayload(undefined, 'payload');
      expect(payload.render(triggerContext(event))).to.equal(event.data);
    });
  });

  describe('context roots', () => {
    it('columns at the top; instance, old, event, signal_kwargs by name', () => {
      const event = updated({ quantity: 13 });
      expect(render({ now: '{{ quantity }}', was: '{{ old.quantity }}', same: '{{ instance.quantity }}' }, event)).to.deep.equal({ now: 13, was: 12, same: 13 });
      expect(render('{{ event.type }} {{ event.app }} {{ event.model }} {{ event.tenant }} {{ event.id }}', event)).to.equal(
        `orm.post_save shop orders acme ${event.id}`,
      );
      expect(render('{{ signal_kwargs.update_fields }}', event)).to.deep.equal(['quantity']);
    });

    it('a root wins over a column of the same name; the column is instance.<name>', () => {
      const out = render({ root: '{{ event.type }}', column: '{{ instance.event }}' }) as { root: unknown; column: unknown };
      expect(out).to.deep.equal({ root: 'orm.post_save', column: 'launch' });
      expect(render('{{ event }}')).to.not.have.property('data');
    });

    it('array elements by index', () => {
      expect(render('{{ meta.tags.1 }}')).to.equal('rush');
    });

    it('a delete renders the old row (the event\'s data.data); a django event its strings', () => {
      expect(render('{{ id }}', deleted())).to.equal(7);
      expect(render({ q: '{{ quantity }}' }, djangoInserted())).to.deep.equal({ q: '12' });
    });

    it('the relation hook answers names that are neither roots nor columns', () => {
      const context = triggerContext(inserted(), { relation: (name, row) => (name === 'customer' ? { name: `customer ${row?.customer_id}` } : MISSING) });
      expect(compilePayload('{{ customer.name }}', 'payload').render(context)).to.equal('customer 3');
      const compiled = compilePayload({ a: '{{ customer.name }}', b: ['x {{id}}'] }, 'payload');
      expect(compiled.paths).to.deep.equal([['customer', 'name'], ['id']]);
      // Where each sits, so a relation resolver's errors name the key as the renderer's do.
      expect(compiled.placeholders).to.deep.equal([
        { path: ['customer', 'name'], where: 'payload.a', text: '{{ customer.name }}' },
        { path: ['id'], where: 'payload.b[0]', text: '{{id}}' },
      ]);
    });
  });

  describe('per-delivery errors (final, dead-lettered)', () => {
    it('a column the row lacks names the placeholder and the available keys', () => {
      const err = thrown(() => render({ a: { b: 'x {{ colour }}' } }));
      expect(err).to.be.instanceOf(PayloadError);
      expect(err).to.be.instanceOf(DeliveryError);
      expect((err as DeliveryError).retriable).to.equal(false);
      expect(err.message).to.include('payload.a.b: {{ colour }}: the row has no column colour');
      expect(err.message).to.include('(columns: id, customer_id, customer_name, quantity, price, meta, event, note; roots: instance, event, signal_kwargs)');
      expect((err as PayloadError).detail).to.deep.equal({ placeholder: 'colour', key: 'payload.a.b' });
    });

    it('customer.name without a relation resolver (relations off) is a clear missing-path error', () => {
      expect(thrown(() => render('{{ customer.name }}')).message).to.match(
        /payload: \{\{ customer\.name \}\}: the row has no column customer, and customer_id is no foreign key this delivery follows \(.*limits\.relationDepth above 0/,
      );
    });

    it('old on an insert, a missing member, past an array, into a scalar', () => {
      expect(thrown(() => render('{{ old.quantity }}')).message).to.include('this change has no previous row');
      expect(thrown(() => render('{{ meta.color }}')).message).to.match(/meta has no color \(its keys: tags, serial, ratio\)/);
      expect(thrown(() => render('{{ meta.tags.2 }}')).message).to.include('meta.tags is an array of 2 with no element 2');
      expect(thrown(() => render('{{ quantity.x }}')).message).to.include('quantity is a number, not an object');
      expect(thrown(() => render('{{ meta.serial.x }}')).message).to.include('meta.serial is a number, not an object');
      expect(thrown(() => render('{{ note.x }}')).message).to.include('note is null, not an object');
      expect(thrown(() => render('{{ meta.constructor }}')).message).to.include('meta has no constructor');
    });

    it('a truncate has no row: its columns and instance are missing', () => {
      expect(thrown(() => render('{{ id }}', truncated())).message).to.include('the row has no column id (columns: none; roots: event, signal_kwargs)');
      expect(thrown(() => render('{{ instance.id }}', truncated())).message).to.include('this change has no instance');
      expect(render('{{ signal_kwargs.restart_identity }}', truncated())).to.equal(true);
    });
  });

  describe('compile-time errors (configuration, naming the key path)', () => {
    const compileError = (template: unknown): string => {
      const err = thrown(() => compilePayload(template, 'triggers.ship.payload'));
      expect(err).to.be.instanceOf(ConfigError);
      return err.message;
    };

    it('malformed placeholders', () => {
      expect(compileError({ a: ['{{ id }'] })).to.include('triggers.ship.payload.a[0]: "{{ id }" has an unmatched {{');
      expect(compileError('{ id }}')).to.include('unmatched }}');
      expect(compileError('{{ }}')).to.include('is not a placeholder');
      expect(compileError('{{ id | upper }}')).to.include('{{ id | upper }} in "{{ id | upper }}" is not a placeholder');
      expect(compileError('{{ a..b }}')).to.include('not a placeholder');
      expect(compileError('{{ 0.a }}')).to.include('not a placeholder');
      expect(compileError({ 'odd key': { x: '{{ a b }}' } })).to.include('triggers.ship.payload["odd key"].x');
    });

    it('{{ env.NAME }} is refused: environment values do not go into payloads', () => {
      expect(compileError({ token: '{{ env.API_TOKEN }}' })).to.match(/triggers\.ship\.payload\.token: \{\{ env\.API_TOKEN \}\}: environment values are not rendered into payloads/);
      expect(render('{{ instance.env }}', inserted({ env: 'prod' }))).to.equal('prod');
    });

    it('keys are not templates', () => {
      expect(compileError({ '{{ id }}': 1 })).to.include('keys are not templates');
    });

    it('values JSON cannot carry', () => {
      expect(compileError({ a: Number.NaN })).to.include('triggers.ship.payload.a: a number is not a JSON value');
      expect(compileError({ a: new Date(0) })).to.include('an object is not a JSON value');
      expect(compileError([undefined])).to.include('triggers.ship.payload[0]: undefined is not a JSON value');
    });
  });
});
