import type { BrokerType } from '../broker';
import { ErrorCodes, PgceError } from '../../errors';

/** Placeholder until the redis sink lands: refuses clearly instead of pretending to deliver. */
export const redisBroker: BrokerType = {
  type: 'redis',
  connSchema: { type: 'object' },
  paramsSchema: { type: 'object' },
  create() {
    throw new PgceError(ErrorCodes.SINK_CONFIG, 'the redis handler is not available in this build yet');
  },
};
