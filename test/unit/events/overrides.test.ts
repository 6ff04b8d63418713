import { expect } from 'chai';
import { ErrorCodes, PgceError } from '../../../src/errors';
import { parseCeOverrides } from '../../../src/events/overrides';

function rejection(raw: string): PgceError {
  try {
    parseCeOverrides(raw);
  } catch (err) {
    expect(err).to.be.instanceOf(PgceError);
    expect((err as PgceError).code).to.equal(ErrorCodes.CE_OVERRIDES);
    expect((err as PgceError).message).to.match(/^K_CE_OVERRIDES: /);
    return err as PgceError;
  }
  throw new Error(`accepted ${raw}`);
}

describe('events/overrides parseCeOverrides (K_CE_OVERRIDES)', () => {
  it('unset, empty or blank means no overrides', () => {
    for (const raw of [undefined, '', '   \n']) expect(parseCeOverrides(raw)).to.deep.equal({});
    expect(parseCeOverrides('{}')).to.deep.equal({});
    expect(parseCeOverrides('{"extensions":{}}')).to.deep.equal({});
  });

  it('accepts string, integer and boolean extensions; ignores other top-level keys, warning about them', () => {
    const raw = '{"extensions":{"team":"payments","tier":2,"beta":false,"env2":"ü"},"other":{"x":[1]}}';
    const warnings: string[] = [];
    expect(parseCeOverrides(raw, (w) => warnings.push(w))).to.deep.equal({ team: 'payments', tier: 2, beta: false, env2: 'ü' });
    expect(warnings).to.deep.equal([
      'K_CE_OVERRIDES: ignored "other": only "extensions" is defined (Knative CloudEventOverrides), e.g. {"extensions": {"team": "data"}}',
    ]);
    // app/model are ours but not guaranteed: Knative's overrides may restate them.
    expect(parseCeOverrides('{"extensions":{"app":"billing"}}')).to.deep.equal({ app: 'billing' });
  });

  it('rejects text that is not JSON, or not an object', () => {
    expect(rejection('{extensions:').message).to.include('not valid JSON');
    for (const raw of ['[]', '"x"', '3', 'null']) {
      expect(rejection(raw).message).to.include('(root): must be a JSON object');
    }
  });

  it('rejects extensions that are not an object', () => {
    for (const raw of ['{"extensions":[]}', '{"extensions":"a=b"}', '{"extensions":null}']) {
      expect(rejection(raw).message).to.include('extensions: must be an object');
    }
  });

  it('rejects values outside the CloudEvents type system, naming the key', () => {
    expect(rejection('{"extensions":{"team":{"a":1}}}').message).to.equal(
      'K_CE_OVERRIDES: extensions.team: must be a string, an integer or a boolean, not an object',
    );
    expect(rejection('{"extensions":{"team":null}}').message).to.include(
      'extensions.team: must be a string, an integer or a boolean, not null',
    );
    expect(rejection('{"extensions":{"team":["a"]}}').message).to.include('not an array');
    expect(rejection('{"extensions":{"ratio":1.5}}').message).to.include(
      'extensions.ratio: 1.5 is not a CloudEvents Integer',
    );
    expect(rejection('{"extensions":{"big":2147483648}}').message).to.include('extensions.big: 2147483648 is not');
    expect(parseCeOverrides('{"extensions":{"small":-2147483648}}')).to.deep.equal({ small: -2147483648 });
  });

  it('rejects names that are not lower-case a-z0-9', () => {
    for (const name of ['Team', 'my-ext', 'my_ext', 'été', '']) {
      const err = rejection(JSON.stringify({ extensions: { [name]: 'x' } }));
      expect(err.message).to.include(`extensions[${JSON.stringify(name)}]`);
      expect(err.message).to.include('lower-case letters a-z and digits 0-9');
    }
  });

  it('rejects names pg-cloudevents sets itself', () => {
    const reserved = ['id', 'source', 'specversion', 'type', 'time', 'subject', 'datacontenttype', 'dataschema'];
    for (const name of [...reserved, 'data', 'sequence', 'partitionkey', 'originid', 'schemaurl']) {
      const err = rejection(JSON.stringify({ extensions: { [name]: 'x' } }));
      expect(err.message).to.equal(
        `K_CE_OVERRIDES: extensions.${name}: "${name}" is set by pg-cloudevents and may not be overridden`,
      );
    }
  });
});
