import type { MissedTicks } from './schedule-options';

/** What a runtime does when it takes up a schedule, given the stored last tick. Built by {@link planCatchUp}. */
export type CatchUp =
  /** A brand-new schedule: store `now` as its baseline, start nothing (it never fires for earlier ticks). */
  | { readonly kind: 'baseline'; readonly record: number }
  /** Ticks passed since the last one: store the latest, and start an instance for it when `start` says so. */
  | { readonly kind: 'missed'; readonly tick: number; readonly start: boolean }
  /** No tick passed since the last one: nothing to do. */
  | { readonly kind: 'none' };

/**
 * Decides (without I/O) what a schedule taken up at `now` does about the ticks it may have missed.
 *
 * @param lastTick the stored last tick, or undefined when the schedule never ran anywhere
 * @param latestTick the schedule's latest tick at or before `now`, or null
 * @example
 * planCatchUp(undefined, now, latest, 'runOnce');   // { kind: 'baseline', record: now }
 * planCatchUp(Date.UTC(2026, 0, 1, 1), Date.UTC(2026, 0, 1, 5, 30), Date.UTC(2026, 0, 1, 5), 'runOnce');
 * // { kind: 'missed', tick: Date.UTC(2026, 0, 1, 5), start: true }
 */
export function planCatchUp(lastTick: number | undefined, now: number, latestTick: number | null, missed: MissedTicks): CatchUp {
  if (lastTick === undefined) return { kind: 'baseline', record: now };
  if (latestTick === null || latestTick <= lastTick) return { kind: 'none' };
  return { kind: 'missed', tick: latestTick, start: missed === 'runOnce' };
}
