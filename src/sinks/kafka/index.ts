import type { BrokerType } from '../broker';
import { ErrorCodes, PgceError } from '../../errors';

/** Placeholder until the kafka sink lands: refuses clearly instead of pretending to deliver. */
export const kafkaBroker: BrokerType = {
  type: 'kafka',
  connSchema: { type: 'object' },
  paramsSchema: { type: 'object' },
  create() {
    throw new PgceError(ErrorCodes.SINK_CONFIG, 'the kafka handler is not available in this build yet');
  },
};
