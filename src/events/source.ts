import { CloudEvent } from 'cloudevents';

/**
 * CloudEvents 1.0, 3.1.1 "source": a non-empty URI-reference. Checked by the SDK's own validation,
 * so that what the configuration accepts is exactly what building an event accepts later.
 */
export function isEventSource(text: string): boolean {
  try {
    new CloudEvent({ id: 'probe', type: 'probe', source: text }, true);
    return true;
  } catch {
    return false;
  }
}
