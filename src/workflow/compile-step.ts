// A step class checked and compiled: on the main list, or inside a parallel branch or a forEach (where it may not jump).
import { DefinitionError } from '../errors/definition-error';
import { quote } from '../errors/serialized-error';
import { isStepClass } from '../steps/base-step';
import { stepMetadata } from '../steps/step-decorator';
import { describe, kindOf } from './definition-values';
import type { CompiledStep } from './workflow-definition';

export function compileStep(value: unknown, index: number, where: string): CompiledStep {
  if (!isStepClass(value)) {
    const nested = ['parallel', 'forEach', 'when'].includes(kindOf(value) as string);
    throw new DefinitionError('NOT_A_STEP', nested ? `${where}: a ${kindOf(value) === 'parallel' ? 'parallel group' : (kindOf(value) as string)} cannot sit inside a branch or a forEach item; those are one step or a sequence of steps` : `${where}: ${describe(value)} is not a step; steps extend BaseStep`, {
      where,
    });
  }
  const meta = stepMetadata(value);
  if (meta === undefined) {
    throw new DefinitionError(
      'UNDECORATED_STEP',
      `${where}: class ${value.name} extends BaseStep but has no @Step({ name }) decorator; a stable name is required`,
      { where, className: value.name },
    );
  }
  return { kind: 'step', name: meta.name, index, cls: value, meta };
}

/** A step inside a branch or a forEach: it may not jump. */
export function compileBranchStep(value: unknown, index: number, where: string): CompiledStep {
  const step = compileStep(value, index, where);
  if (step.meta.options.goto !== undefined) {
    throw new DefinitionError('GOTO_NOT_ALLOWED', `${where}: step ${quote(step.name)} declares goto targets, but a step inside a parallel branch or a forEach cannot jump`, {
      where,
      step: step.name,
    });
  }
  return step;
}
