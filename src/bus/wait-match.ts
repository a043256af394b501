import type { Wait } from '../core/flow-fields';
import type { SagaEvent } from './event';

/** The value at `path` (dot-separated) in a payload, or undefined. */
export function payloadValue(payload: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.prototype.hasOwnProperty.call(payload, path)) return payload[path];
  let current: unknown = payload;
  for (const part of path.split('.')) {
    if (typeof current !== 'object' || current === null || !Object.prototype.hasOwnProperty.call(current, part)) {
      return undefined;
    }
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/** True when `event` is one that `wait`, held by instance `instanceId`, awaits. */
export function eventMatchesWait(event: SagaEvent, wait: Wait, instanceId: string): boolean {
  if (event.instanceId !== undefined && event.instanceId !== instanceId) return false;
  if (!wait.topics.includes(event.topic)) return false;
  for (const [key, expected] of Object.entries(wait.match)) {
    if (payloadValue(event.payload, key) !== (expected)) return false;
  }
  return true;
}
