import type { BrokerType } from '../broker';
import { ErrorCodes, PgceError } from '../../errors';

/** Placeholder until the pubsub sink lands: refuses clearly instead of pretending to deliver. */
export const pubsubBroker: BrokerType = {
  type: 'pubsub',
  connSchema: { type: 'object' },
  paramsSchema: { type: 'object' },
  create() {
    throw new PgceError(ErrorCodes.SINK_CONFIG, 'the pubsub handler is not available in this build yet');
  },
};
