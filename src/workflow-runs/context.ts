/**
 * What a task's payload template reads (README "Workflows"): not a change but a run, seen as three
 * roots: `inputs` (the run's payload: the instance's inputs merged over withParams), `session`
 * and `instance` (`t_ship#0`). A template without them (no `payload`) sends the run's payload.
 */
import { member, type TriggerContext } from '../routing/triggers/context';
import { RUN_TEMPLATE_ROOTS } from '../workflows/config';
import type { RunRequest } from '../workflows/runner';

export function runContext(run: Pick<RunRequest, 'payload' | 'session' | 'instance'>): TriggerContext {
  const roots: Record<string, unknown> = { inputs: run.payload, session: run.session, instance: run.instance };
  return {
    data: run.payload,
    row: undefined,
    appEvent: false,
    root: (name) => member(roots, name),
    names: () => ({ columns: [], roots: [...RUN_TEMPLATE_ROOTS] }),
  };
}
