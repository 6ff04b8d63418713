import type { BrokerType } from '../broker';
import { ErrorCodes, PgceError } from '../../errors';

/** Placeholder until the mqtt sink lands: refuses clearly instead of pretending to deliver. */
export const mqttBroker: BrokerType = {
  type: 'mqtt',
  connSchema: { type: 'object' },
  paramsSchema: { type: 'object' },
  create() {
    throw new PgceError(ErrorCodes.SINK_CONFIG, 'the mqtt handler is not available in this build yet');
  },
};
