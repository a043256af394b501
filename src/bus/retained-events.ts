import type { Wait } from '../core/flow-fields';
import type { SagaEvent } from './event';
import { eventMatchesWait } from './wait-match';

/**
 * Events that no wait matched when they were published, kept for a short window so that a fast reply (an
 * event published while the step's `run` is still returning `continue`) still resumes the step.
 * The first wait that matches a retained event consumes it.
 */
export class RetainedEvents {
  private readonly byTopic = new Map<string, SagaEvent[]>();

  constructor(private readonly retentionMs: number) {}

  /** Keeps `event` until `now + retention`. */
  add(event: SagaEvent, now: number): void {
    if (this.retentionMs <= 0) return;
    let list = this.byTopic.get(event.topic);
    if (list === undefined) this.byTopic.set(event.topic, (list = []));
    this.prune(list, now);
    list.push(event);
  }

  /** Removes and returns the oldest retained event that `wait` of `instanceId` matches. */
  take(instanceId: string, wait: Wait, now: number): SagaEvent | undefined {
    for (const topic of wait.topics) {
      const list = this.byTopic.get(topic);
      if (list === undefined) continue;
      this.prune(list, now);
      const i = list.findIndex((e) => eventMatchesWait(e, wait, instanceId));
      if (i >= 0) {
        const [event] = list.splice(i, 1);
        if (list.length === 0) this.byTopic.delete(topic);
        return event;
      }
      if (list.length === 0) this.byTopic.delete(topic);
    }
    return undefined;
  }

  /** Removes the kept events `drop` picks and returns them. */
  removeWhere(drop: (event: SagaEvent) => boolean): SagaEvent[] {
    const removed: SagaEvent[] = [];
    for (const [topic, list] of this.byTopic) {
      const keep = list.filter((e) => !drop(e) || (removed.push(e), false));
      if (keep.length === 0) this.byTopic.delete(topic);
      else this.byTopic.set(topic, keep);
    }
    return removed;
  }

  /** Every kept event, oldest first per topic. */
  all(): SagaEvent[] {
    return [...this.byTopic.values()].flat().sort((a, b) => a.publishedAt - b.publishedAt);
  }

  /** How many events are kept. */
  get size(): number {
    let n = 0;
    for (const list of this.byTopic.values()) n += list.length;
    return n;
  }

  private prune(list: SagaEvent[], now: number): void {
    let drop = 0;
    while (drop < list.length && (list[drop] as SagaEvent).publishedAt + this.retentionMs < now) drop += 1;
    if (drop > 0) list.splice(0, drop);
  }
}
