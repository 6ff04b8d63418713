/**
 * `cloudevent`: a derived CloudEvent (README, "Triggers") to the default sink, the configured
 * handler, whichever it is. Its timeout and retries are the handler's.
 */
import type { CloudEventActionConfig } from '../../../config/types';
import { derivedEvent } from '../derived';
import type { ActionKind } from './contract';
import { COMMON_OPTIONS, parseCommonOptions, unknownKeys } from './options';

export const cloudeventAction: ActionKind<CloudEventActionConfig> = {
  key: 'cloudevent',
  usage: '{ cloudevent: { type?: … } }',

  parse(raw, where, _context, problems) {
    const before = problems.length;
    unknownKeys(raw, 'cloudevent', COMMON_OPTIONS, where, problems);
    const options = parseCommonOptions(raw, where, problems);
    const ce = raw.cloudevent ?? {};
    const extra = typeof ce === 'object' && ce !== null && !Array.isArray(ce) ? Object.keys(ce).filter((k) => k !== 'type') : ['(not an object)'];
    const type = (ce as { type?: unknown }).type;
    if (extra.length > 0) problems.push(`${where}.cloudevent: unknown setting ${extra.join(', ')} (only type)`);
    else if (type !== undefined && (typeof type !== 'string' || type.trim() === '')) problems.push(`${where}.cloudevent.type: must be a non-empty string`);
    if (problems.length > before) return undefined;
    return { cloudevent: type === undefined ? {} : { type: type as string }, ...options };
  },

  type: (action, rule, typePrefix) => action.cloudevent.type ?? `${typePrefix}.trigger.${rule}`,

  target(_action, runtime) {
    return {
      // The default sink is the default destination's: opened and closed by the sinks registry.
      send: (payload, delivery) => runtime.defaultSink().send(derivedEvent(delivery, payload)),
      close: async () => {},
      describe: () => runtime.defaultSink().describe(),
    };
  },
};
