import type { BrokerType } from '../broker';
import { ErrorCodes, PgceError } from '../../errors';

/** Placeholder until the nats sink lands: refuses clearly instead of pretending to deliver. */
export const natsBroker: BrokerType = {
  type: 'nats',
  connSchema: { type: 'object' },
  paramsSchema: { type: 'object' },
  create() {
    throw new PgceError(ErrorCodes.SINK_CONFIG, 'the nats handler is not available in this build yet');
  },
};
