import { InvalidEventError } from '../errors/runtime-errors';
import { quote } from '../errors/serialized-error';
import { sanitizeJson } from '../state/safe-json';

/** A JSON scalar: what a wait's `match` may compare against. */
export type MatchValue = string | number | boolean | null;

/** An event as it travels on the saga bus. */
export interface SagaEvent<P extends Record<string, unknown> = Record<string, unknown>> {
  /** What happened, e.g. `'payment.captured'`. Waits select events by topic. */
  readonly topic: string;
  /** The event's data (JSON). Waits match on its fields. */
  readonly payload: P;
  /** A unique id; assigned when the event is published without one. */
  readonly id: string;
  /** When set, only this instance may receive the event. */
  readonly instanceId?: string;
  /** When the runtime accepted it (ms since epoch, from the runtime's clock). */
  readonly publishedAt: number;
}

/** What a publisher hands in: `payload`, `id` and `instanceId` are optional. */
export interface SagaEventInput<P extends Record<string, unknown> = Record<string, unknown>> {
  readonly topic: string;
  readonly payload?: P;
  readonly id?: string;
  readonly instanceId?: string;
}

let sequence = 0;
function nextEventId(now: number): string {
  sequence = (sequence + 1) % Number.MAX_SAFE_INTEGER;
  return `evt-${now.toString(36)}-${sequence.toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Checks that `input` has the shape of a saga event and returns a normalised, prototype-safe copy.
 * @throws {@link InvalidEventError} when it does not.
 */
export function normalizeEvent(input: unknown, now: number): SagaEvent {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidEventError(`an event must be an object with a string topic, got ${quote(input)}`, {
      received: quote(input),
    });
  }
  const raw = input as Record<string, unknown>;
  if (typeof raw.topic !== 'string' || raw.topic.length === 0) {
    throw new InvalidEventError(`an event needs a non-empty string "topic", got ${quote(raw.topic)}`, {
      received: quote(input),
    });
  }
  if (raw.payload !== undefined && (typeof raw.payload !== 'object' || raw.payload === null || Array.isArray(raw.payload))) {
    throw new InvalidEventError(
      `the payload of event ${JSON.stringify(raw.topic)} must be an object, got ${quote(raw.payload)}`,
      { topic: raw.topic, received: quote(raw.payload) },
    );
  }
  if (raw.id !== undefined && (typeof raw.id !== 'string' || raw.id.length === 0)) {
    throw new InvalidEventError(`the id of event ${JSON.stringify(raw.topic)} must be a non-empty string`, {
      topic: raw.topic,
    });
  }
  if (raw.instanceId !== undefined && typeof raw.instanceId !== 'string') {
    throw new InvalidEventError(`the instanceId of event ${JSON.stringify(raw.topic)} must be a string`, {
      topic: raw.topic,
    });
  }
  let payload: Record<string, unknown>;
  try {
    payload = raw.payload === undefined ? {} : (sanitizeJson(raw.payload) as Record<string, unknown>);
  } catch (cause) {
    throw new InvalidEventError(
      `the payload of event ${JSON.stringify(raw.topic)} is not JSON: ${(cause as Error).message}`,
      { topic: raw.topic },
    );
  }
  const event: { -readonly [K in keyof SagaEvent]: SagaEvent[K] } = {
    topic: raw.topic,
    payload,
    id: raw.id ?? nextEventId(now),
    publishedAt: now,
  };
  if (raw.instanceId !== undefined) event.instanceId = raw.instanceId;
  return event;
}
