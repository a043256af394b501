// A `when`: evaluates its predicate on the state and goes into the block it chose.
import { serializeThrown, quote } from '../../errors/serialized-error';
import type { CompiledWhen } from '../../workflow/workflow-definition';
import type { Ctx } from './context';
import { advanceMain, failMain, FAILED } from './main-line';

/** Evaluates a `when` on the state, records the block it chose, and goes into that block. */
export function enterWhen(c: Ctx, node: CompiledWhen): void {
  const rec = c.rec;
  const fail = (why: string, details: Record<string, unknown> = {}): void => {
    rec.flow.stepIndex = node.index;
    rec.flow.stepName = node.name;
    failMain(c, { code: 'WHEN_FAILED', name: 'WhenError', message: `the predicate of ${quote(node.name)} ${why}`, details: { when: node.name, ...details } }, FAILED);
  };
  let chosen: unknown;
  try {
    chosen = node.predicate(c.env.hydrate(rec.state));
  } catch (thrown) {
    const cause = serializeThrown(thrown);
    fail(`threw: ${cause.message}`, { cause });
    return;
  }
  if (typeof chosen !== 'boolean') {
    const got = typeof chosen === 'object' && chosen !== null && 'then' in chosen ? 'a promise' : quote(chosen);
    fail(`returned ${got}; it must return true or false, synchronously`);
    return;
  }
  const branch = chosen ? 'then' : 'else';
  rec.flow.stack.push({ kind: 'when', name: node.name, index: node.index, branch });
  c.effects.push({ type: 'branched', when: node.name, branch });
  advanceMain(c, chosen ? node.index + 1 : node.elseIndex);
}
