import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Logger } from '../../src';
import type { Print } from '../timeline-observer';

/**
 * A {@link Logger} (pino's shape) for the LoggingObserver that prints `log <level> <instance> <message>`: no
 * timestamps and no durations, so the output is the same on every run.
 */
export function printLogger(print: Print): Logger {
  const line =
    (level: string) =>
    (obj: Record<string, unknown>, msg?: string): void => {
      const id = typeof obj.instanceId === 'string' ? obj.instanceId : '-';
      print(`  log ${level.padEnd(5)} ${id}  ${msg ?? ''}`);
    };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

function statusOf(span: ReadableSpan): string {
  const { code, message } = span.status;
  if (code === SpanStatusCode.ERROR) return `ERROR${message === undefined || message === '' ? '' : ` ${message}`}`;
  return code === SpanStatusCode.OK ? 'OK' : 'UNSET';
}

/**
 * The finished spans as an indented tree: roots (the `saga <workflow>` spans) in the order they started, each
 * span's children in the order they started (ties: the order they ended). Prints names, the instance id of each
 * root and statuses — no span ids, no times.
 */
export function spanTree(spans: readonly ReadableSpan[]): string[] {
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const parentOf = (s: ReadableSpan): string | undefined => {
    const parent = s.parentSpanContext?.spanId;
    return parent !== undefined && ids.has(parent) ? parent : undefined;
  };
  const ms = (s: ReadableSpan): number => s.startTime[0] * 1000 + s.startTime[1] / 1e6;
  const order = (list: ReadableSpan[]): ReadableSpan[] =>
    list.map((span, ended) => ({ span, ended })).sort((a, b) => ms(a.span) - ms(b.span) || a.ended - b.ended).map((x) => x.span);
  const lines: string[] = [];
  const walk = (span: ReadableSpan, depth: number): void => {
    const instance = parentOf(span) === undefined ? ` (${String(span.attributes['sagaflow.instance_id'])})` : '';
    lines.push(`${'  '.repeat(depth + 1)}${span.name}${instance}  [${statusOf(span)}]`);
    const id = span.spanContext().spanId;
    for (const child of order(spans.filter((s) => parentOf(s) === id))) walk(child, depth + 1);
  };
  for (const root of order(spans.filter((s) => parentOf(s) === undefined))) walk(root, 0);
  return lines;
}
