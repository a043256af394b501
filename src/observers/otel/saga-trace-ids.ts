import { createHash } from 'node:crypto';
import { isValidSpanId, isValidTraceId, TraceFlags, type SpanContext } from '@opentelemetry/api';

function hexDigest(seed: string, length: number): string {
  return createHash('sha256').update(seed, 'utf8').digest('hex').slice(0, length);
}

/** Makes an all-zero id (invalid in W3C trace context; odds 2^-64 and less) valid by setting its last digit. */
function nonZero(id: string, valid: (id: string) => boolean): string {
  return valid(id) ? id : `${id.slice(0, -1)}1`;
}

/**
 * The trace id of an instance: the first 16 bytes of `sha256("sagaflow:trace:" + instanceId)`, as 32 hex digits.
 * Every process computes the same one, so all spans of an instance land in one trace, across restarts and workers,
 * without storing anything with the instance. Use it to link from an admin page to the saga's trace.
 *
 * @example
 * sagaTraceId('order-42'); // the trace to open in your tracing backend for instance order-42
 */
export function sagaTraceId(instanceId: string): string {
  return nonZero(hexDigest(`sagaflow:trace:${instanceId}`, 32), isValidTraceId);
}

/**
 * The span id of an instance's (virtual) root: the first 8 bytes of `sha256("sagaflow:root:" + instanceId)`, as 16
 * hex digits. Every instance span of the instance, in every process, has it as its parent span id.
 *
 * @example
 * sagaRootSpanId('order-42'); // the parent span id of every "saga order" span of order-42
 */
export function sagaRootSpanId(instanceId: string): string {
  return nonZero(hexDigest(`sagaflow:root:${instanceId}`, 16), isValidSpanId);
}

/**
 * The span context every instance span of `instanceId` is parented on: the deterministic trace id, the deterministic
 * root span id, marked remote (no process owns it, none exports it) and sampled or not as told.
 *
 * @example
 * const parent = trace.setSpanContext(ROOT_CONTEXT, sagaRootSpanContext('order-42', true));
 */
export function sagaRootSpanContext(instanceId: string, sampled: boolean): SpanContext {
  return {
    traceId: sagaTraceId(instanceId),
    spanId: sagaRootSpanId(instanceId),
    traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  };
}
