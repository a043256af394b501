// Jumps: where a goto lands (loops counted against their limit), and the errors for a jump that cannot be taken.
import { quote, type SerializedError } from '../../errors/serialized-error';
import type { CompiledNode } from '../../workflow/workflow-definition';
import type { Ctx } from './context';

export function gotoNotAllowed(target: string, why: string): SerializedError {
  return { code: 'GOTO_NOT_ALLOWED', name: 'GotoError', message: `goto ${quote(target)} is not allowed ${why}`, details: { target } };
}

function gotoError(code: string, message: string, details: Record<string, unknown>): SerializedError {
  return { code, name: 'GotoError', message, details };
}

/**
 * Where a goto from `node` to `target` lands: a target it declared (loops counted against `allowLoop.max`), or
 * the error explaining why the jump cannot be taken.
 */
export function takeJump(c: Ctx, node: CompiledNode | undefined, target: string): number | SerializedError {
  const from = node?.name ?? c.rec.flow.stepName ?? '';
  const index = node === undefined || node.kind === 'when' ? undefined : node.jumps?.targets.get(target);
  if (node === undefined || index === undefined) {
    const declared = node === undefined || node.kind === 'when' ? [] : [...(node.jumps?.targets.keys() ?? [])];
    const known = c.env.def.nodeIndex.has(target);
    return gotoError(
      known ? 'UNDECLARED_GOTO_TARGET' : 'UNKNOWN_GOTO_TARGET',
      `${quote(from)} returned goto ${quote(target)}, ${known ? 'which it does not declare' : `but workflow ${quote(c.env.def.name)} has no step or group by that name`}; declared targets: ${declared.length === 0 ? 'none' : declared.join(', ')} (list them in goto: [...])`,
      { target, from, declared },
    );
  }
  if (index <= node.index) {
    const loops = c.rec.loops ?? {};
    const taken = loops[node.name] ?? 0;
    const max = node.jumps?.loopMax ?? 0;
    if (taken >= max) {
      return gotoError('LOOP_LIMIT_EXCEEDED', `${quote(from)} jumped back to ${quote(target)} ${taken} times, the most its allowLoop.max allows`, { target, from, max });
    }
    c.rec.loops = { ...loops, [node.name]: taken + 1 };
    c.rec.pass = (c.rec.pass ?? 0) + 1;
  }
  return index;
}
