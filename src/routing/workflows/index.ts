/**
 * The workflow route kind (README "Workflows"): a change that one of a workflow's `events`
 * selects is one delivery to the workflow's destination, `workflow:<name>`, a lane of its own in
 * the delivery engine (ordered per row, retried, dead-lettered, acknowledged with the change).
 *
 * Matching table and operation (or an application event's type) is synchronous (the engine's hot path, the trigger rules' own
 * matching); the destination's sink, when it sends, evaluates each matched input's `when`, then
 * the workflow's `session` (JSONata, asynchronous), and applies the inputs in order through the
 * store (`fire`: the Lua script, then the work pointers). It resolves only after both were
 * written, so the engine acknowledges the change after the input is durable in Redis
 * (docs/workflows.md, "Durable runs"). Redis unreachable is a retriable failure; a session that
 * cannot be computed is final (dead-lettered).
 */
import type { CloudEvent } from 'cloudevents';
import type { TriggerOperation } from '../../config/types';
import { tableKey } from '../../config/tables';
import { DeliveryError, ErrorCodes, errorMessage } from '../../errors';
import { createEvent } from '../../events/format';
import type { Destination, SendResult, Sink } from '../../sinks/types';
import { DeadlineExceeded, withDeadline } from '../../sinks/support/deadline';
import type { WorkflowConfig } from '../../workflows/config';
import { WorkflowStateError } from '../../workflows/errors';
import type { InputEvent, WorkflowStore } from '../../workflows/store';
import type { Change } from '../../sources/change';
import type { RouteKind } from '../contract';
import { triggerContext, type TriggerContext } from '../triggers/context';
import { compileTransform, compileWhen, type CompiledExpression } from '../triggers/expressions';
import { kindsOf, matchesChange, type ChangeSelector } from '../triggers/rules';
import { inputDestinationName, inputEventId, inputKey } from './names';

export * from './names';

interface CompiledInput extends ChangeSelector {
  readonly name: string;
  readonly when?: CompiledExpression<boolean>;
}

export interface CompiledWorkflow {
  readonly name: string;
  /** Its `session` expression as written, for messages. */
  readonly sessionText: string;
  readonly session: CompiledExpression<unknown>;
  /** In the file's order: the order in which one change's inputs are applied. */
  readonly inputs: readonly CompiledInput[];
}

/** Compiles workflow `index` (the loader has reported every problem by key path already). */
export function compileWorkflow(wf: WorkflowConfig, index: number): CompiledWorkflow {
  const at = `workflows[${index}]`;
  return {
    name: wf.name,
    sessionText: wf.session,
    session: compileTransform(wf.session, `${at}.session`),
    inputs: Object.entries(wf.events).map(([name, selector]) => ({
      name,
      active: true,
      ...(selector.type !== undefined
        ? { tables: new Set<string>(), kinds: new Set<Change['kind']>(), types: new Set([selector.type]) }
        : { tables: new Set([tableKey(selector.table)]), kinds: kindsOf(selector.on as TriggerOperation[]) }),
      ...(selector.when !== undefined && { when: compileWhen(selector.when, `${at}.events.${name}.when`) }),
    })),
  };
}

/** An input delivery's event → the change's event and the inputs the change matched. */
const routedInputs = new WeakMap<CloudEvent<unknown>, { event: CloudEvent<unknown>; inputs: readonly CompiledInput[]; appEvent: boolean }>();

/**
 * The event an input delivery carries through the engine: the change event's attributes and data
 * under its own id (`<change event id>/workflow/<name>`) with the `workflow` extension, so a dead
 * letter of it is a row of its own, never mistaken for the change's default event.
 */
function inputEvent(event: CloudEvent<unknown>, workflow: string, inputs: readonly CompiledInput[], appEvent: boolean): CloudEvent<unknown> {
  const attributes: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(event)) {
    if (name !== 'data_base64' && value !== undefined) attributes[name] = value;
  }
  attributes.id = inputEventId(event.id, workflow);
  attributes.workflow = workflow;
  const shell = createEvent(attributes) as CloudEvent<unknown>;
  routedInputs.set(shell, { event, inputs, appEvent });
  return shell;
}

/** A session is a non-empty string, or a number (its decimal text). */
function sessionText(value: unknown): string | undefined {
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** The sink of one workflow's destination: applies a change's inputs. One attempt per call. */
export class InputSink implements Sink {
  readonly name: string;

  constructor(
    private readonly workflow: CompiledWorkflow,
    private readonly store: WorkflowStore,
    /** Bounds one input's Redis work (delivery.timeout): a hung Redis is a retriable failure. */
    private readonly timeoutMs: number,
  ) {
    this.name = inputDestinationName(workflow.name);
  }

  async send(event: CloudEvent<unknown>): Promise<SendResult | void> {
    const routed = routedInputs.get(event);
    if (routed === undefined) {
      throw new DeliveryError(`${this.name}: an input is applied only as its change is routed (a stored input cannot be sent again)`, {
        retriable: false,
        code: ErrorCodes.WORKFLOW_STATE,
      });
    }
    // An application event's `data` is the application's value, not a row (JSONata reads data and event).
    const context = triggerContext(routed.event, { appEvent: routed.appEvent });
    const inputs: CompiledInput[] = [];
    for (const input of routed.inputs) if (input.when === undefined || (await input.when.evaluate(context))) inputs.push(input);
    if (inputs.length === 0) return { skipped: true };
    const session = await this.sessionOf(context);
    // The input's value: the changed row (the old row for a delete; null for a truncate), or the application event's data.
    const data = routed.appEvent ? context.data ?? null : context.row ?? null;
    for (const input of inputs) await this.fire(session, { input: input.name, eventId: inputKey(routed.event.id, input.name), data });
  }

  private async sessionOf(context: TriggerContext): Promise<string> {
    let value: unknown;
    try {
      value = await this.workflow.session.evaluate(context);
    } catch (err) {
      // No value (a path that matched nothing) or an evaluation error: the same every time.
      throw this.sessionError(errorMessage(err), err);
    }
    const session = sessionText(value);
    if (session === undefined) throw this.sessionError(`gave ${JSON.stringify(value)}, not a non-empty string or a number`);
    return session;
  }

  private sessionError(why: string, cause?: unknown): DeliveryError {
    return new DeliveryError(`workflow ${this.workflow.name}: its session ${JSON.stringify(this.workflow.sessionText)} has no value for this change: ${why}`, {
      retriable: false,
      code: ErrorCodes.WORKFLOW_SESSION,
      cause,
    });
  }

  private async fire(session: string, input: InputEvent): Promise<void> {
    try {
      await withDeadline(this.timeoutMs, () => this.store.fire(session, input));
    } catch (err) {
      if (err instanceof WorkflowStateError) throw new DeliveryError(err.message, { retriable: false, code: ErrorCodes.WORKFLOW_STATE, cause: err });
      const why = err instanceof DeadlineExceeded ? `no answer within ${this.timeoutMs} ms` : errorMessage(err);
      throw new DeliveryError(`workflow ${this.workflow.name}: Redis did not apply input ${input.input} of session ${JSON.stringify(session)}: ${why}`, {
        retriable: true,
        code: ErrorCodes.WORKFLOW_REDIS,
        cause: err,
      });
    }
  }

  async close(): Promise<void> {
    // The store's connection is the workflows runtime's, closed with it.
  }

  describe(): string {
    return `${this.name} (Redis)`;
  }
}

/**
 * The workflows of `config.workflows`, one route: a change is delivered once per workflow that
 * has an input selecting it. The stores (`context.workflows`, by workflow name) belong to the
 * process (src/workflow-runs), not to the route.
 */
export const workflowsRoute: RouteKind = (context) => {
  const { config, buildEvent } = context;
  const workflows = (config.workflows ?? []).map(compileWorkflow);
  if (workflows.length === 0) return [];
  const stores = context.workflows;
  if (stores === undefined) throw new Error('workflows are configured, but the router was given no workflow stores');
  const destinations: Destination[] = workflows.map((wf) => {
    const store = stores.get(wf.name);
    if (store === undefined) throw new Error(`no workflow store for ${wf.name}`);
    return { name: inputDestinationName(wf.name), sink: new InputSink(wf, store, config.delivery.timeoutMs), batchSize: 1 };
  });
  return [{
    destinations,
    route(change, deliver) {
      let event: CloudEvent<unknown> | undefined;
      for (let w = 0; w < workflows.length; w++) {
        let matched: CompiledInput[] | undefined;
        for (const input of workflows[w].inputs) if (matchesChange(input, change)) (matched ??= []).push(input);
        if (matched === undefined) continue;
        event ??= buildEvent(change);
        deliver(destinations[w], inputEvent(event, workflows[w].name, matched, change.kind === 'message'));
      }
    },
  }];
};
