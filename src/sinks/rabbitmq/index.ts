import type { BrokerType } from '../broker';
import { ErrorCodes, PgceError } from '../../errors';

/** Placeholder until the rabbitmq sink lands: refuses clearly instead of pretending to deliver. */
export const rabbitmqBroker: BrokerType = {
  type: 'rabbitmq',
  connSchema: { type: 'object' },
  paramsSchema: { type: 'object' },
  create() {
    throw new PgceError(ErrorCodes.SINK_CONFIG, 'the rabbitmq handler is not available in this build yet');
  },
};
