import { BlockList, isIP } from 'node:net';
import { ConfigError, ErrorCodes, type ErrorCode } from '../../errors';

/**
 * The security allow-lists for trigger rules that come from the database or an admin API
 * (untrusted) rather than the configuration file (trusted). Semantics and the reasons for them:
 * docs/triggers.md, "Allow-lists".
 */

/** The `allow` settings, compiled once when the configuration is loaded. */
export interface AllowList {
  /** Absent: no list (trusted rules pass, untrusted are refused). Present, even empty: the only URLs allowed. */
  readonly webhookUrls?: readonly UrlPattern[];
  readonly dynamicValues?: ReadonlySet<string>;
}

export interface UrlPattern {
  /** As written, for messages. */
  readonly source: string;
  /** Anchored: the whole normalized URL must match. */
  readonly regex: RegExp;
  /** The host the pattern names literally (no wildcard in it), lower-case; undefined when it names none. */
  readonly literalHost?: string;
}

export type AllowSetting = 'allow.webhookUrls' | 'allow.dynamicValues';

/** A URL or dynamic value a rule may not use. A ConfigError, so a refused file rule exits 2. */
export class NotAllowedError extends ConfigError {
  readonly setting: AllowSetting;
  constructor(message: string, setting: AllowSetting, code: ErrorCode) {
    super([message], code);
    this.name = 'NotAllowedError';
    this.setting = setting;
  }
}

/** Validates the raw `allow` object (problems name `path`'s keys) and compiles its patterns. */
export function compileAllowList(raw: unknown, path = 'allow'): AllowList {
  if (raw === undefined || raw === null) return Object.freeze({});
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([`${path}: must be an object with webhookUrls and/or dynamicValues`]);
  }
  const problems: string[] = [];
  const record = raw as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== 'webhookUrls' && key !== 'dynamicValues') {
      problems.push(`${path}.${key}: unknown setting (webhookUrls, dynamicValues)`);
    }
  }
  const urls = stringList(record.webhookUrls, `${path}.webhookUrls`, problems);
  const values = stringList(record.dynamicValues, `${path}.dynamicValues`, problems);
  const webhookUrls = urls?.map(([source, at]) => compilePattern(source, at, problems));
  values?.forEach(([value, at]) => {
    if (value.includes('*')) problems.push(`${at}: globs are not supported; list each dynamic value exactly`);
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    ...(webhookUrls && { webhookUrls: Object.freeze(webhookUrls as UrlPattern[]) }),
    ...(values && { dynamicValues: new Set(values.map(([v]) => v)) }),
  });
}

/**
 * Whether a rule may send to `url`. Returns the refusal (never throws), so a caller can skip an
 * untrusted rule or stop on a file rule. Without a list, trusted rules pass unchecked and
 * untrusted ones are refused; with a list, every rule is checked.
 */
export function checkWebhookUrl(
  url: string,
  allow: AllowList | undefined,
  trusted: boolean,
  where = 'webhook URL',
): NotAllowedError | undefined {
  const patterns = allow?.webhookUrls;
  if (patterns === undefined && trusted) return undefined;
  const refuse = (why: string) =>
    new NotAllowedError(`${where}: ${why}`, 'allow.webhookUrls', ErrorCodes.URL_NOT_ALLOWED);

  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Shown without what may be credentials or a token.
    const text = url.slice(0, 200).replace(/\/\/[^/]*@/, '//…@').replace(/\?.*$/, '?…');
    return refuse(`${JSON.stringify(text)} is not a valid URL`);
  }
  const shown = displayUrl(parsed);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return refuse(`${shown} is not allowed: only http and https URLs are`);
  }
  // A pattern like `https://hooks\.example\.com.*` also matches `https://hooks.example.com@evil.org/`;
  // refusing userinfo outright closes that, and credentials belong in a header anyway.
  if (parsed.username !== '' || parsed.password !== '') {
    return refuse(
      `${shown} is not allowed: it has credentials (user:password@) in it; send them in a header from a dynamic value`,
    );
  }
  if (patterns === undefined) {
    return refuse(
      `${shown} is not allowed: rules from the database or an admin API need allow.webhookUrls; ` +
        `add a pattern matching the whole URL, e.g. ${JSON.stringify(suggestPattern(parsed))}`,
    );
  }
  // WHATWG normalization: lower-case scheme and host, default port dropped, IPv4 forms canonical
  // (http://2130706433/ is http://127.0.0.1/). The HTTP sink parses with the same parser.
  const normalized = parsed.href;
  const matching = patterns.filter((p) => p.regex.test(normalized));
  if (matching.length === 0) {
    return refuse(
      `${shown} matches no pattern of allow.webhookUrls (a pattern must match the whole URL); ` +
        `add one, e.g. ${JSON.stringify(suggestPattern(parsed))}`,
    );
  }
  const host = parsed.hostname;
  const special = specialAddress(host);
  if (special !== undefined && !matching.some((p) => p.literalHost === host)) {
    return refuse(
      `${shown} points at a ${special} address (${host}), which allow.webhookUrls allows only when ` +
        `a pattern names that host literally, e.g. ${JSON.stringify(suggestPattern(parsed))}`,
    );
  }
  return undefined;
}

/**
 * Whether a rule may read a dynamic value (`env.NAME`, `file:/path`, `module:path.js#export`).
 * Exact match only: `env.HOOK` does not allow `env.HOOK_TOKEN`.
 */
export function checkDynamicValue(
  reference: string,
  allow: AllowList | undefined,
  trusted: boolean,
  where = 'dynamic value',
): NotAllowedError | undefined {
  const values = allow?.dynamicValues;
  if (values === undefined && trusted) return undefined;
  if (values?.has(reference)) return undefined;
  const why =
    values === undefined
      ? 'rules from the database or an admin API may read dynamic values only when allow.dynamicValues ' +
        `lists them; add ${JSON.stringify(reference)}`
      : `it is not in allow.dynamicValues (exact match); add ${JSON.stringify(reference)}`;
  const message = `${where}: ${JSON.stringify(reference)} is not allowed: ${why}`;
  return new NotAllowedError(message, 'allow.dynamicValues', ErrorCodes.VALUE_NOT_ALLOWED);
}

function stringList(value: unknown, path: string, problems: string[]): [string, string][] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) {
    problems.push(`${path}: must be a list of strings`);
    return undefined;
  }
  const out: [string, string][] = [];
  value.forEach((v, i) => {
    if (typeof v !== 'string' || v === '') problems.push(`${path}[${i}]: must be a non-empty string`);
    else out.push([v, `${path}[${i}]`]);
  });
  return out;
}

function compilePattern(source: string, path: string, problems: string[]): UrlPattern | undefined {
  try {
    return Object.freeze({ source, regex: new RegExp(`^(?:${source})$`), literalHost: literalHost(source) });
  } catch (err) {
    problems.push(`${path}: not a valid regular expression (${(err as Error).message})`);
    return undefined;
  }
}

/**
 * The host a pattern names literally: after a literal `http://`, `https://` or `https?://`
 * (optionally `^`-anchored, slashes optionally escaped), letters, digits, `-` and escaped dots, or
 * an escaped IPv6 literal `\[::1\]`, up to a port, a path or the end. `127.0.0.1` with unescaped
 * dots, `.*`, `[a-z]+` or a group is a wildcard and names no host.
 */
const LITERAL_HOST = /^\^?https?\??:(?:\/\/|\\\/\\\/)((?:[a-z0-9-]|\\[.-])+|\\\[[0-9a-f:.]+\\\])(?=$|\$|:|\/|\\\/)/i;

function literalHost(pattern: string): string | undefined {
  const m = LITERAL_HOST.exec(pattern);
  return m?.[1].replace(/\\(.)/g, '$1').toLowerCase();
}

// Addresses that reach the machine itself or its cloud's metadata service: an untrusted rule
// pointed at them could read credentials (SSRF). Private ranges (10/8, 192.168/16, …) are many
// deployments' real receivers, so they are the allow-list's business, not this guard's.
const METADATA = blockList([['169.254.169.254', 32, 'ipv4'], ['fd00:ec2::254', 128, 'ipv6']]);
const LOOPBACK = blockList([['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']]);
const LINK_LOCAL = blockList([['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']]);
// 0.0.0.0/8 is "this network" (RFC 1122 3.2.1.3); Linux connects 0.0.0.0 to the local host.
const UNSPECIFIED = blockList([['0.0.0.0', 8, 'ipv4'], ['::', 128, 'ipv6']]);
const METADATA_HOSTS = new Set(['metadata.google.internal']);

function blockList(subnets: [string, number, 'ipv4' | 'ipv6'][]): BlockList {
  const list = new BlockList();
  for (const [address, prefix, type] of subnets) list.addSubnet(address, prefix, type);
  return list;
}

/**
 * What kind of special address a URL's (WHATWG-normalized) host is, if any. Literal hosts only:
 * no DNS lookup here, so a name that resolves to such an address is the allow-list's job.
 * IPv4-mapped IPv6 (`[::ffff:127.0.0.1]`) counts as the IPv4 address it maps.
 */
export function specialAddress(hostname: string): string | undefined {
  const host = hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();
  const family = isIP(host);
  if (family === 0) {
    if (METADATA_HOSTS.has(host)) return 'cloud metadata';
    // RFC 6761 6.3: localhost and every name under it are the loopback.
    if (host === 'localhost' || host.endsWith('.localhost')) return 'loopback';
    return undefined;
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (METADATA.check(host, type)) return 'cloud metadata';
  if (LOOPBACK.check(host, type)) return 'loopback';
  if (LINK_LOCAL.check(host, type)) return 'link-local';
  if (UNSPECIFIED.check(host, type)) return 'unspecified';
  return undefined;
}

/** Scheme, host and path: never userinfo, query or fragment, which may carry secrets. */
function displayUrl(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
}

function suggestPattern(u: URL): string {
  return `${`${u.protocol}//${u.host}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/.*`;
}
