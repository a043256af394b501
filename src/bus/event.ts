import { InvalidEventError } from '../errors/runtime-errors';
import { quote, serializeThrown } from '../errors/serialized-error';
import { sanitizeJson } from '../core/safe-json';

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
      `the payload of event ${quote(raw.topic)} must be an object, got ${quote(raw.payload)}`,
      { topic: raw.topic, received: quote(raw.payload) },
    );
  }
  if (raw.id !== undefined && (typeof raw.id !== 'string' || raw.id.length === 0)) {
    throw new InvalidEventError(`the id of event ${quote(raw.topic)} must be a non-empty string, got ${quote(raw.id)}`, {
      topic: raw.topic,
    });
  }
  if (raw.instanceId !== undefined && (typeof raw.instanceId !== 'string' || raw.instanceId.length === 0)) {
    throw new InvalidEventError(`the instanceId of event ${quote(raw.topic)} must be a non-empty string, got ${quote(raw.instanceId)}`, {
      topic: raw.topic,
    });
  }
  let payload: unknown;
  try {
    payload = raw.payload === undefined ? {} : sanitizeJson(raw.payload);
  } catch (cause) {
    throw new InvalidEventError(`the payload of event ${quote(raw.topic)} is not JSON: ${serializeThrown(cause).message}`, { topic: raw.topic });
  }
  // Checked again as JSON: a toJSON may have turned the payload into a string, an array or null.
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new InvalidEventError(`the payload of event ${quote(raw.topic)} must be an object as JSON, but its toJSON made it ${quote(payload)}`, {
      topic: raw.topic,
      received: quote(payload),
    });
  }
  const event: { -readonly [K in keyof SagaEvent]: SagaEvent[K] } = {
    topic: raw.topic,
    payload: payload as Record<string, unknown>,
    // A random UUID: ids key the inbox and retained events, so they must not collide across workers.
    id: raw.id ?? globalThis.crypto.randomUUID(),
    publishedAt: now,
  };
  if (raw.instanceId !== undefined) event.instanceId = raw.instanceId;
  return event;
}
