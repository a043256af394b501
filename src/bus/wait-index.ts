import type { TrackRef, Wait } from '../core/flow-fields';
import type { SagaEvent } from './event';
import { payloadValue } from './wait-match';

/** A waiting track: the instance and which of its tracks (main line or a branch) waits. */
export interface WaiterRef {
  readonly instanceId: string;
  readonly track: TrackRef;
}

interface Registration {
  readonly ref: WaiterRef;
  readonly buckets: readonly string[];
}

function signature(topic: string, keys: readonly string[], values: readonly unknown[]): string {
  return JSON.stringify([topic, keys, values]);
}

/**
 * An index of waits by topic and match values, so an event finds its waiters without a scan of every
 * waiting instance: for each topic it keeps the few distinct sets of match keys in use, and per set a map
 * from the matched values to the waiters. Dispatch costs O(key sets of the topic), not O(waiters).
 */
export class WaitIndex {
  private readonly buckets = new Map<string, Map<string, WaiterRef>>();
  private readonly keySets = new Map<string, Map<string, { keys: readonly string[]; count: number }>>();
  private readonly byWaiter = new Map<string, Registration>();

  private static waiterKey(ref: WaiterRef): string {
    return ref.track === null ? ref.instanceId : `${ref.instanceId}\u0000${ref.track}`;
  }

  /** Registers (or replaces) the wait of a track. */
  add(ref: WaiterRef, wait: Wait): void {
    this.remove(ref);
    const keys = Object.keys(wait.match).sort();
    const values = keys.map((k) => wait.match[k]);
    const id = WaitIndex.waiterKey(ref);
    const buckets: string[] = [];
    for (const topic of wait.topics) {
      const sig = signature(topic, keys, values);
      let bucket = this.buckets.get(sig);
      if (bucket === undefined) this.buckets.set(sig, (bucket = new Map<string, WaiterRef>()));
      bucket.set(id, ref);
      buckets.push(sig);
      let sets = this.keySets.get(topic);
      if (sets === undefined) this.keySets.set(topic, (sets = new Map<string, { keys: readonly string[]; count: number }>()));
      const setKey = JSON.stringify(keys);
      const entry = sets.get(setKey);
      if (entry === undefined) sets.set(setKey, { keys, count: 1 });
      else entry.count += 1;
    }
    this.byWaiter.set(id, { ref, buckets });
  }

  /** Removes the wait of a track, if any. */
  remove(ref: WaiterRef): void {
    const id = WaitIndex.waiterKey(ref);
    const reg = this.byWaiter.get(id);
    if (reg === undefined) return;
    this.byWaiter.delete(id);
    for (const sig of reg.buckets) {
      const bucket = this.buckets.get(sig);
      bucket?.delete(id);
      if (bucket !== undefined && bucket.size === 0) this.buckets.delete(sig);
      const [topic, keys] = JSON.parse(sig) as [string, string[]];
      const sets = this.keySets.get(topic);
      const setKey = JSON.stringify(keys);
      const entry = sets?.get(setKey);
      if (entry !== undefined && --entry.count === 0) sets?.delete(setKey);
      if (sets !== undefined && sets.size === 0) this.keySets.delete(topic);
    }
  }

  /** Removes every wait of an instance (main line and branches). */
  removeInstance(instanceId: string, tracks: Iterable<TrackRef>): void {
    for (const track of tracks) this.remove({ instanceId, track });
  }

  /** The tracks whose waits match `event` (topic, match values, and `instanceId` when the event names one). */
  find(event: SagaEvent): WaiterRef[] {
    const sets = this.keySets.get(event.topic);
    if (sets === undefined) return [];
    const found: WaiterRef[] = [];
    for (const { keys } of sets.values()) {
      const values = keys.map((k) => payloadValue(event.payload, k));
      if (values.some((v) => v === undefined)) continue;
      const bucket = this.buckets.get(signature(event.topic, keys, values));
      if (bucket === undefined) continue;
      for (const ref of bucket.values()) {
        if (event.instanceId === undefined || event.instanceId === ref.instanceId) found.push(ref);
      }
    }
    return found;
  }

  /** How many tracks wait. */
  get size(): number {
    return this.byWaiter.size;
  }
}
