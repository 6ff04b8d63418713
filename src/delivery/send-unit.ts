import type { CloudEvent } from 'cloudevents';
import type { SendResult, Sink } from '../sinks/types';

/**
 * One send of the delivery engine — a single event, or a batch — presented as a Sink so that
 * `deliverWithRetry` retries it as a whole (a retriable failure resends the same events) and the
 * sink's answer code is kept for the `delivery:delivered` metrics.
 */
export class SendUnit implements Sink {
  readonly name: string;
  /** The answer code of the accepted attempt, when the sink reports one. */
  status?: number;
  /** The sink sent nothing on purpose (SendResult.skipped). */
  skipped = false;

  constructor(
    private readonly sink: Sink,
    private readonly events: CloudEvent<unknown>[],
    private readonly batch: boolean,
  ) {
    this.name = sink.name;
  }

  async send(event: CloudEvent<unknown>): Promise<SendResult | void> {
    const result = this.batch ? await this.sink.sendBatch!(this.events) : await this.sink.send(event);
    this.status = result ? result.status : undefined;
    this.skipped = result?.skipped === true;
    return result;
  }

  async close(): Promise<void> {
    // The engine owns the sink, not the unit.
  }

  describe(): string {
    return this.sink.describe();
  }
}
