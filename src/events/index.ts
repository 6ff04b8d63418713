/**
 * Event formats by name (`events.format`). Adding a format: one module, one line in FORMATS.
 */
import { ErrorCodes, PgceError } from '../errors';
import { defaultFormat } from './default';
import { djangoFormat } from './django';
import type { EventFormat } from './format';
import { isEventSource } from './source';

export type { EventContext, EventData, EventFormat, SignalKwargs } from './format';
export { parseCeOverrides, RESERVED_ATTRIBUTES } from './overrides';
export { isEventSource } from './source';

const FORMATS: Readonly<Record<string, EventFormat>> = Object.freeze({
  default: defaultFormat,
  django: djangoFormat,
});

export type EventFormatName = 'default' | 'django';

export function getEventFormat(name: EventFormatName): EventFormat {
  const format = Object.prototype.hasOwnProperty.call(FORMATS, name) ? FORMATS[name] : undefined;
  if (format === undefined) {
    throw new PgceError(
      ErrorCodes.CONFIG_INVALID,
      `events.format: unknown format ${JSON.stringify(name)} (known: ${Object.keys(FORMATS).join(', ')})`,
    );
  }
  return format;
}

/**
 * The event `source`: K_SOURCE, else the configured `events.source`, else the format's default.
 * Empty strings count as unset. loadConfig already refused a bad K_SOURCE or `source`; checked
 * again here (CloudEvents 1.0 "source" is a non-empty URI-reference) for the default and for
 * callers that build a configuration themselves, so that no change fails to build later.
 * @throws PgceError(PGCE_ERR_CONFIG_INVALID) naming K_SOURCE or events.source.
 */
export function resolveSource(opts: {
  kSource?: string;
  configured?: string;
  format: EventFormat;
  databaseName: string;
}): string {
  let origin: string;
  let source: string;
  if (opts.kSource) {
    [origin, source] = ['K_SOURCE', opts.kSource];
  } else if (opts.configured) {
    [origin, source] = ['events.source', opts.configured];
  } else {
    [origin, source] = ['the database name', opts.format.defaultSource(opts.databaseName)];
  }
  if (!isEventSource(source)) {
    throw new PgceError(
      ErrorCodes.CONFIG_INVALID,
      `${origin}: ${JSON.stringify(source)} is not a valid CloudEvents source ` +
        '(a URI-reference, e.g. /pg-cloudevents/mydb)',
    );
  }
  return source;
}
