/**
 * sagaflow/testing — helpers for testing sagas:
 * - {@link SimulatedClock}: time that moves only when you say, so wait deadlines fire without sleeping.
 * - {@link RecordingObserver}: records every hook call in order.
 * - {@link flushMicrotasks}: lets pending async work settle.
 * - {@link checkCompatible}: in CI, whether instances of one version of a workflow can move to the next.
 *
 * @module sagaflow/testing
 */
export { SimulatedClock, flushMicrotasks } from './simulated-clock';
export { RecordingObserver, type RecordedHook } from './recording-observer';
export { checkCompatible, type CompatibilityReport, type PositionReport } from '../versions/check-compatible';
export type { RenameMap } from '../versions/migrate-record';
