/**
 * A workflow run's action (README "Workflows"): the task's `run`, a trigger action, sent through
 * its kind's target (a cloudevent to the default sink, a webhook, a broker) with the delivery
 * policy's retries (deliverWithRetry: retriable failures retried with the backoff, Retry-After
 * honoured). What is sent is the task's payload template rendered over the run (inputs, session,
 * instance), else the run's payload; a CloudEvent (cloudevent, `format: cloudevent`) carries the
 * instance's id (the same on every attempt), subject `<workflow>/<session>/<task>#<n>`, the
 * events' source and the `workflow` extension.
 *
 * The result (what finish_run cascades) is a webhook's JSON object answer, else `{}`. A final
 * failure, or the retries' end, is stored as a dead letter (destination
 * `workflow:<workflow>/<task>`) before it is thrown: the runner then records the instance failed
 * (and fail_run replays it as retry.max allows). At shutdown (the signal) nothing is recorded:
 * the run stays pending and is taken over (docs/workflows.md, "Durable runs").
 */
import type { CloudEvent } from 'cloudevents';
import type { Config, TriggerActionConfig } from '../config/types';
import type { DeadLetterHandler } from '../delivery/dead-letter';
import { DeliveryAbortedError, deliverWithRetry, type DeliveryFailure } from '../delivery/deliver';
import { DeliveryError, ErrorCodes, errorMessage } from '../errors';
import { createEvent } from '../events/format';
import type { Lifecycle } from '../lifecycle';
import { actionKindOf, type ActionTarget } from '../routing/triggers/actions';
import { derivedEvent } from '../routing/triggers/derived';
import { compilePayload, type CompiledPayload } from '../routing/triggers/payload';
import { RateLimiter } from '../routing/triggers/rate-limit';
import { taskDestinationName } from '../routing/workflows/names';
import type { Destination, Sink } from '../sinks/types';
import type { RunRequest } from '../workflows/runner';
import { runContext } from './context';

export interface ExecutorOptions {
  config: Config;
  /** The events' `source` (derived events share it). */
  source: string;
  /** The default destination's sink (a cloudevent action's), opened by the sinks registry. */
  defaultSink(): Sink;
  /** Stores a failed run (the dead-letter table, and the dead-letter sink when configured). */
  deadLetter: DeadLetterHandler;
  lifecycle: Lifecycle;
  /** Aborted when the runs in flight must stop (shutdown, past the grace period). */
  signal: AbortSignal;
}

/** One task's action, ready to send: built on its first run, closed with the executor. */
interface TaskTarget {
  destination: Destination;
  target: ActionTarget;
  type: string;
  payload?: CompiledPayload;
  limiter?: RateLimiter;
}

/** The derived event's type: the action's own, else `<typePrefix>.workflow.<workflow>.<task>`. */
export function taskEventType(action: TriggerActionConfig, workflow: string, task: string, typePrefix: string): string {
  const own = 'cloudevent' in action ? action.cloudevent.type : action.type;
  return own ?? `${typePrefix}.workflow.${workflow}.${task}`;
}

export class TaskExecutor {
  private readonly targets = new Map<string, TaskTarget>();

  constructor(private readonly options: ExecutorOptions) {}

  /** The runner's Execute: resolves with the run's result, or throws once the run failed for good. */
  readonly execute = async (run: RunRequest): Promise<unknown> => {
    const { config, lifecycle, signal } = this.options;
    const task = this.targetOf(run);
    const event = this.deliveryEvent(run, task);
    const firstAttemptAt = new Date();
    let payload: unknown = run.payload;
    try {
      payload = task.payload ? task.payload.render(runContext(run)) : run.payload;
      const sink: Sink = {
        name: task.destination.name,
        send: async (delivery) => {
          // Every attempt counts against the limit: a retry is a request too.
          await task.limiter?.take();
          return task.target.send(payload, delivery);
        },
        close: async () => {},
        describe: () => task.target.describe(),
      };
      const { result } = await deliverWithRetry(sink, event, config.delivery, {
        signal,
        onAttemptFailed: (f) =>
          lifecycle.emit('delivery:attemptFailed', {
            event, destination: task.destination.name, error: f.error, status: f.error.status, attempt: f.attempt, willRetry: f.willRetry, retryInMs: f.retryInMs,
          }),
      });
      return result?.body ?? {};
    } catch (err) {
      if (err instanceof DeliveryAbortedError || signal.aborted) throw asAborted(err);
      const failure = err instanceof DeliveryError ? (err as DeliveryFailure) : new DeliveryError(errorMessage(err), { retriable: false, cause: err });
      const attempts = (failure as { attempts?: number }).attempts ?? 1;
      const stored = derivedEvent(event, payload);
      try {
        await this.options.deadLetter(
          { event: stored, destination: task.destination, error: failure, status: failure.status, attempts, firstAttemptAt, lastAttemptAt: new Date() },
          signal,
        );
      } catch (storing) {
        // Shutting down before the dead letter was stored: the run is not recorded as failed.
        throw asAborted(storing);
      }
      lifecycle.emit('delivery:deadLettered', { event: stored, destination: task.destination.name, error: failure, attempts, status: failure.status });
      throw failure;
    }
  };

  async close(): Promise<void> {
    const targets = [...this.targets.values()];
    this.targets.clear();
    await Promise.allSettled(targets.map(async (t) => {
      t.limiter?.close();
      await t.target.close();
    }));
  }

  private targetOf(run: RunRequest): TaskTarget {
    const key = `${run.workflow}\u0000${run.task}`;
    const known = this.targets.get(key);
    if (known) return known;
    const { config } = this.options;
    const index = (config.workflows ?? []).findIndex((w) => w.name === run.workflow);
    const where = `workflows[${index}].tasks.${run.task}.run`;
    const action = run.run;
    const kind = actionKindOf(action);
    let target: ActionTarget;
    try {
      target = kind.target(action, { config, trusted: true, where, defaultSink: this.options.defaultSink, keepAnswer: true });
    } catch (err) {
      // What only shows when the target is built (a broker that cannot send a bare payload): no retry helps.
      throw new DeliveryError(`${where}: ${errorMessage(err)}`, { retriable: false, code: ErrorCodes.CONFIG_INVALID, cause: err });
    }
    const name = taskDestinationName(run.workflow, run.task);
    // What dead letters and the dead-letter sink's extensions name; each run sends through its own adapter (execute).
    const named: Sink = {
      name,
      send: () => Promise.reject(new Error(`${name} sends through its runs`)),
      close: async () => {},
      describe: () => target.describe(),
    };
    const made: TaskTarget = {
      destination: { name, sink: named, batchSize: 1 },
      target,
      type: taskEventType(action, run.workflow, run.task, config.events.typePrefix),
      ...(action.payload !== undefined && { payload: compilePayload(action.payload, `${where}.payload`) }),
      ...(action.rateLimit && { limiter: new RateLimiter(action.rateLimit) }),
    };
    this.targets.set(key, made);
    return made;
  }

  /** The run's event: its identity and the events' source, `data` the payload (rendered when it is sent). */
  private deliveryEvent(run: RunRequest, task: TaskTarget): CloudEvent<unknown> {
    return createEvent({
      specversion: '1.0',
      id: run.id,
      source: this.options.source,
      type: task.type,
      subject: run.subject,
      time: new Date().toISOString(),
      workflow: run.workflow,
      datacontenttype: 'application/json',
      data: run.payload,
    }) as CloudEvent<unknown>;
  }
}

function asAborted(cause: unknown): DeliveryAbortedError {
  return cause instanceof DeliveryAbortedError ? cause : new DeliveryAbortedError(0, cause instanceof DeliveryError ? cause : undefined);
}
