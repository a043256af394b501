/**
 * sagaflow/testing — helpers for testing sagas:
 * - {@link SimulatedClock}: time that moves only when you say, so wait deadlines fire without sleeping.
 * - {@link RecordingObserver}: records every hook call in order.
 * - {@link flushMicrotasks}: lets pending async work settle.
 */
export { SimulatedClock, flushMicrotasks } from './simulated-clock';
export { RecordingObserver, type RecordedHook } from './recording-observer';
