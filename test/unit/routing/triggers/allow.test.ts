import { expect } from 'chai';
import { ConfigError, ErrorCodes } from '../../../../src/errors';
import {
  checkDynamicValue,
  checkWebhookUrl,
  compileAllowList,
  NotAllowedError,
  specialAddress,
  type AllowList,
} from '../../../../src/routing/triggers/allow';

const UNTRUSTED = false;
const TRUSTED = true;

function allowed(url: string, allow: AllowList | undefined, trusted = UNTRUSTED): boolean {
  return checkWebhookUrl(url, allow, trusted) === undefined;
}

function refusal(url: string, allow: AllowList | undefined, trusted = UNTRUSTED): NotAllowedError {
  const err = checkWebhookUrl(url, allow, trusted, 'triggers[0].action.url');
  expect(err, `${url} should be refused`).to.be.instanceOf(NotAllowedError);
  return err!;
}

describe('allow.webhookUrls: a URL must match one pattern in full', () => {
  const allow = compileAllowList({ webhookUrls: ['https://hooks\\.example\\.com/.*'] });

  it('allows a URL the pattern matches', () => {
    expect(allowed('https://hooks.example.com/orders', allow)).to.equal(true);
    expect(allowed('https://hooks.example.com/', allow)).to.equal(true);
  });

  it('refuses prefix and suffix tricks: the pattern is anchored at both ends', () => {
    expect(allowed('https://hooks.example.com.evil.org/', allow)).to.equal(false);
    expect(allowed('https://evil.org/https://hooks.example.com/', allow)).to.equal(false);
    expect(allowed('https://evil.org/?u=https://hooks.example.com/x', allow)).to.equal(false);
    const strict = compileAllowList({ webhookUrls: ['https://hooks\\.example\\.com/orders'] });
    expect(allowed('https://hooks.example.com/orders', strict)).to.equal(true);
    expect(allowed('https://hooks.example.com/orders/x', strict)).to.equal(false);
    expect(allowed('https://hooks.example.com/ordersx', strict)).to.equal(false);
  });

  it('an alternation in a pattern stays inside the anchors', () => {
    const alt = compileAllowList({ webhookUrls: ['https://a\\.example\\.com/x|https://b\\.example\\.com/y'] });
    expect(allowed('https://a.example.com/x', alt)).to.equal(true);
    expect(allowed('https://b.example.com/y', alt)).to.equal(true);
    expect(allowed('https://a.example.com/x/evil', alt)).to.equal(false);
    expect(allowed('https://evil.org/https://b.example.com/y', alt)).to.equal(false);
  });

  it('refuses any URL with userinfo, even one a sloppy pattern would match', () => {
    const sloppy = compileAllowList({ webhookUrls: ['https://hooks\\.example\\.com.*'] });
    for (const list of [allow, sloppy]) {
      const err = refusal('https://hooks.example.com@evil.org/', list);
      expect(err.message).to.match(/credentials/);
      expect(allowed('https://user:pw@hooks.example.com/x', list)).to.equal(false);
    }
    // The password never appears in the message.
    expect(refusal('https://user:s3cret@hooks.example.com/x', allow).message).not.to.include('s3cret');
  });

  it('matches the normalized URL: scheme and host in any case, default port dropped', () => {
    expect(allowed('HTTPS://Hooks.Example.COM/orders', allow)).to.equal(true);
    expect(allowed('https://hooks.example.com:443/orders', allow)).to.equal(true);
    expect(allowed('https://hooks.example.com:8443/orders', allow)).to.equal(false);
    expect(allowed('http://hooks.example.com/orders', allow)).to.equal(false);
    // Backslashes are slashes in http(s) URLs, so this one is on hooks.example.com.
    expect(allowed('https://hooks.example.com\\@evil.org/', allow)).to.equal(true);
  });

  it('the path stays case-sensitive', () => {
    const strict = compileAllowList({ webhookUrls: ['https://hooks\\.example\\.com/orders'] });
    expect(allowed('https://hooks.example.com/Orders', strict)).to.equal(false);
  });

  it('refuses what is not an http(s) URL', () => {
    const any = compileAllowList({ webhookUrls: ['.*'] });
    expect(refusal('file:///etc/passwd', any).message).to.match(/only http and https/);
    expect(refusal('not a url', any).message).to.match(/"not a url" is not a valid URL/);
    const bad = refusal('https://user:s3cret@[bad/x?token=abc', any).message;
    expect(bad).to.include('"https://…@[bad/x?…" is not a valid URL');
    expect(bad).not.to.match(/s3cret|abc/);
  });

  it('the refusal names the URL, the setting to add it to and a pattern, with a stable code', () => {
    const err = refusal('https://other.example.com/hook?token=abc', allow);
    expect(err).to.be.instanceOf(ConfigError);
    expect(err.code).to.equal(ErrorCodes.URL_NOT_ALLOWED);
    expect(err.setting).to.equal('allow.webhookUrls');
    expect(err.retriable).to.equal(false);
    expect(err.problems[0]).to.equal(
      'triggers[0].action.url: https://other.example.com/hook?… matches no pattern of allow.webhookUrls (a pattern must match the whole URL); add one, e.g. "https://other\\\\.example\\\\.com/.*"',
    );
    expect(err.message).not.to.include('abc');
  });

  it('an empty list allows nothing, trusted or not', () => {
    const none = compileAllowList({ webhookUrls: [] });
    expect(allowed('https://hooks.example.com/x', none, TRUSTED)).to.equal(false);
    expect(allowed('https://hooks.example.com/x', none, UNTRUSTED)).to.equal(false);
  });
});

describe('allow.webhookUrls: trusted (file) and untrusted (database, admin API) rules', () => {
  it('without a list, untrusted rules are refused and trusted rules pass', () => {
    for (const allow of [undefined, compileAllowList(undefined), compileAllowList({ dynamicValues: [] })]) {
      const err = refusal('https://hooks.example.com/x', allow);
      expect(err.message).to.match(/need allow\.webhookUrls; add a pattern matching the whole URL, e.g\. "https:\/\/hooks\\\\\.example\\\\\.com\/\.\*"/);
      expect(allowed('https://hooks.example.com/x', allow, TRUSTED)).to.equal(true);
      // Trusted file rules are not second-guessed without a list, loopback included.
      expect(allowed('http://127.0.0.1:8080/x', allow, TRUSTED)).to.equal(true);
    }
  });

  it('with a list, trusted rules are checked too', () => {
    const allow = compileAllowList({ webhookUrls: ['https://hooks\\.example\\.com/.*'] });
    expect(allowed('https://hooks.example.com/x', allow, TRUSTED)).to.equal(true);
    expect(allowed('https://other.example.com/x', allow, TRUSTED)).to.equal(false);
    expect(allowed('http://169.254.169.254/latest/meta-data/', compileAllowList({ webhookUrls: ['.*'] }), TRUSTED)).to.equal(false);
  });
});

describe('allow.webhookUrls: the SSRF guard', () => {
  const wildcard = compileAllowList({ webhookUrls: ['https?://.*'] });

  const refused: [string, string][] = [
    ['http://127.0.0.1/', 'loopback'],
    ['http://127.1.2.3:8080/x', 'loopback'],
    ['http://2130706433/', 'loopback'], // the same address as a number
    ['http://0x7f.1/', 'loopback'],
    ['http://localhost:3000/', 'loopback'],
    ['http://LOCALHOST./', 'loopback'],
    ['http://api.localhost/', 'loopback'],
    ['http://[::1]/', 'loopback'],
    ['http://[0:0:0:0:0:0:0:1]/', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'],
    ['http://169.254.1.1/', 'link-local'],
    ['http://[fe80::1]/', 'link-local'],
    ['http://[febf::1]/', 'link-local'],
    ['http://0.0.0.0:8080/', 'unspecified'],
    ['http://0/', 'unspecified'],
    ['http://[::]/', 'unspecified'],
    ['http://169.254.169.254/latest/meta-data/', 'cloud metadata'],
    ['http://[fd00:ec2::254]/', 'cloud metadata'],
    ['http://metadata.google.internal/computeMetadata/v1/', 'cloud metadata'],
    ['http://[::ffff:169.254.169.254]/', 'cloud metadata'],
  ];
  for (const [url, kind] of refused) {
    it(`refuses ${url} (${kind}) though a wildcard pattern matches it`, () => {
      const err = refusal(url, wildcard);
      expect(err.code).to.equal(ErrorCodes.URL_NOT_ALLOWED);
      expect(err.message).to.include(`points at a ${kind} address`);
      expect(err.message).to.include('names that host literally');
    });
  }

  it('leaves private and public addresses to the list (no DNS lookup here)', () => {
    for (const url of ['http://10.0.0.5/', 'http://192.168.1.10/', 'http://[fc00::1]/', 'http://[fec0::1]/', 'http://8.8.8.8/', 'http://internal.example.com/']) {
      expect(allowed(url, wildcard), url).to.equal(true);
    }
  });

  it('allows a special host that a pattern names literally', () => {
    const allow = compileAllowList({
      webhookUrls: ['http://127\\.0\\.0\\.1:8080/.*', 'http://localhost:3000/hooks/.*', 'http://\\[::1\\]/x', '^https?://metadata\\.google\\.internal/.*$'],
    });
    expect(allowed('http://127.0.0.1:8080/hook', allow)).to.equal(true);
    expect(allowed('http://localhost:3000/hooks/a', allow)).to.equal(true);
    expect(allowed('http://[::1]/x', allow)).to.equal(true);
    expect(allowed('http://metadata.google.internal/v1', allow)).to.equal(true);
    // Still only where the pattern matches.
    expect(allowed('http://127.0.0.1:22/hook', allow)).to.equal(false);
  });

  it('a host named by a wildcard is not named literally', () => {
    for (const pattern of ['http://127.0.0.1:8080/.*', 'http://127\\.0\\.0\\.\\d+:8080/.*', 'http://(127\\.0\\.0\\.1):8080/.*', 'http://[a-z]+:3000/.*', 'http://localhost.*']) {
      const allow = compileAllowList({ webhookUrls: [pattern] });
      const url = pattern.includes('3000') || pattern.endsWith('localhost.*') ? 'http://localhost:3000/x' : 'http://127.0.0.1:8080/x';
      expect(allow.webhookUrls![0].regex.test(new URL(url).href), `${pattern} matches ${url}`).to.equal(true);
      expect(allowed(url, allow), pattern).to.equal(false);
    }
  });

  it('a literal host must be the URL\'s host, not another special one', () => {
    const allow = compileAllowList({ webhookUrls: ['http://127\\.0\\.0\\.1/x|http://.*'] });
    expect(allowed('http://127.0.0.1/x', allow)).to.equal(true);
    expect(allowed('http://169.254.169.254/', allow)).to.equal(false);
    expect(allowed('http://127.0.0.1/y', allow)).to.equal(true); // it names 127.0.0.1 literally, and .* matches
  });

  it('specialAddress reads literal hosts only', () => {
    expect(specialAddress('127.0.0.1')).to.equal('loopback');
    expect(specialAddress('[::1]')).to.equal('loopback');
    expect(specialAddress('hooks.example.com')).to.equal(undefined);
    expect(specialAddress('localhost.example.com')).to.equal(undefined);
  });
});

describe('allow.dynamicValues: exact references only', () => {
  const allow = compileAllowList({ dynamicValues: ['env.HOOK', 'file:/var/run/secrets/token', 'module:hooks.js#sign'] });

  it('allows a listed reference', () => {
    expect(checkDynamicValue('env.HOOK', allow, UNTRUSTED)).to.equal(undefined);
    expect(checkDynamicValue('file:/var/run/secrets/token', allow, UNTRUSTED)).to.equal(undefined);
    expect(checkDynamicValue('module:hooks.js#sign', allow, TRUSTED)).to.equal(undefined);
  });

  it('is an exact, case-sensitive match: no prefixes, no neighbours', () => {
    for (const ref of ['env.HOOK_TOKEN', 'env.hook', 'env.HOO', 'file:/var/run/secrets/token/../../../etc/passwd', 'file:/var/run/secrets/token2', 'module:hooks.js#signx', ' env.HOOK']) {
      const err = checkDynamicValue(ref, allow, UNTRUSTED, 'triggers[1].action.headers.authorization');
      expect(err, ref).to.be.instanceOf(NotAllowedError);
      expect(err!.code).to.equal(ErrorCodes.VALUE_NOT_ALLOWED);
      expect(err!.setting).to.equal('allow.dynamicValues');
      expect(err!.problems[0]).to.equal(
        `triggers[1].action.headers.authorization: ${JSON.stringify(ref)} is not allowed: it is not in allow.dynamicValues (exact match); add ${JSON.stringify(ref)}`,
      );
    }
  });

  it('with a list, trusted rules are checked too', () => {
    expect(checkDynamicValue('env.OTHER', allow, TRUSTED)).to.be.instanceOf(NotAllowedError);
  });

  it('without a list, untrusted rules are refused and trusted rules pass', () => {
    const none = compileAllowList({ webhookUrls: ['.*'] });
    const err = checkDynamicValue('env.HOOK_TOKEN', none, UNTRUSTED);
    expect(err!.message).to.match(/may read dynamic values only when allow\.dynamicValues lists them; add "env\.HOOK_TOKEN"/);
    expect(checkDynamicValue('env.HOOK_TOKEN', none, TRUSTED)).to.equal(undefined);
    expect(checkDynamicValue('env.HOOK_TOKEN', undefined, TRUSTED)).to.equal(undefined);
  });
});

describe('compileAllowList: invalid settings name their key path', () => {
  function problems(raw: unknown): string[] {
    try {
      compileAllowList(raw, 'allow');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as ConfigError).code).to.equal(ErrorCodes.CONFIG_INVALID);
      return (err as ConfigError).problems;
    }
    throw new Error('expected a ConfigError');
  }

  it('an invalid regular expression', () => {
    expect(problems({ webhookUrls: ['https://ok\\.example\\.com/.*', 'https://(bad'] })[0]).to.match(/^allow\.webhookUrls\[1\]: not a valid regular expression/);
  });

  it('globs in dynamicValues are refused: list each value', () => {
    expect(problems({ dynamicValues: ['env.HOOK_*'] })).to.deep.equal(['allow.dynamicValues[0]: globs are not supported; list each dynamic value exactly']);
  });

  it('wrong shapes and unknown keys', () => {
    expect(problems('x')[0]).to.match(/^allow: must be an object/);
    expect(problems({ webhookUrls: 'https://x' })[0]).to.equal('allow.webhookUrls: must be a list of strings');
    expect(problems({ dynamicValues: ['env.A', ''] })[0]).to.equal('allow.dynamicValues[1]: must be a non-empty string');
    expect(problems({ webhookUrl: [] })[0]).to.equal('allow.webhookUrl: unknown setting (webhookUrls, dynamicValues)');
  });

  it('finds the literal host of a pattern', () => {
    const hosts = compileAllowList({
      webhookUrls: ['https://hooks\\.example\\.com/.*', '^https?:\\/\\/LocalHost:8080/x', 'http://\\[::1\\]:9/.*', 'http://a\\-b/x', 'https://.*', 'ftp://x/'],
    }).webhookUrls!.map((p) => p.literalHost);
    expect(hosts).to.deep.equal(['hooks.example.com', 'localhost', '[::1]', 'a-b', undefined, undefined]);
  });
});
