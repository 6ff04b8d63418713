import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { ConfigError, DeliveryError } from '../../../src/errors';
import { compileTemplate, fixedDestination, TemplateError } from '../../../src/sinks/template';

const event = new CloudEvent({ source: '/s', type: 'orm.post_save', subject: 'DCE:polls.question/1', app: 'polls', model: 'question' });

describe('destination templates', () => {
  it('renders attributes and extensions into the destination', () => {
    expect(compileTemplate('{{ app }}.{{model}}', 'params.topic')(event)).to.equal('polls.question');
    expect(compileTemplate('cdc-{{ type }}', 'params.topic')(event)).to.equal('cdc-orm.post_save');
  });

  it('a plain destination is returned as it is', () => {
    expect(compileTemplate('orders', 'params.topic')(event)).to.equal('orders');
  });

  it('refuses a malformed placeholder when compiled: a configuration error naming where', () => {
    expect(() => compileTemplate('{{ app }.x', 'brokers.k.params.topic')).to.throw(ConfigError, /brokers\.k\.params\.topic/);
    expect(() => compileTemplate('{{ App }}', 'params.topic')).to.throw(ConfigError, /malformed/);
  });

  it('an event without the named attribute is an error naming it, not an empty destination', () => {
    const render = compileTemplate('{{ app }}.{{ tenant }}', 'params.topic');
    expect(() => render(event)).to.throw(TemplateError, /no tenant attribute/);
    // Final: no retry can add the attribute, so every sink lets it go to the dead letters as it is.
    let thrown: unknown;
    try {
      render(event);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.be.instanceOf(DeliveryError);
    expect((thrown as DeliveryError).retriable).to.equal(false);
  });

  it('a bare message (no attributes) takes a fixed destination as it is, and refuses a template for good, naming where', () => {
    expect(fixedDestination('orders', 'brokers.k.params.topic')).to.equal('orders');
    expect(() => fixedDestination('{{ app }}.x', 'brokers.k.params.topic'))
      .to.throw(TemplateError, /brokers\.k\.params\.topic: "\{\{ app \}\}\.x" is a template/)
      .with.property('retriable', false);
  });
});
