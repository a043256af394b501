// Parallel groups and forEach checked and compiled: their options (with defaults), branches and item steps.
import { DefinitionError } from '../errors/definition-error';
import { quote } from '../errors/serialized-error';
import { checkKnownKeys } from '../input/known-keys';
import type { BranchSpec, ParallelSpec } from '../parallel/parallel';
import { checkJumpOptions } from '../steps/step-decorator';
import { compileBranchStep } from './compile-step';
import type { ForEachSpec } from './control-flow';
import { kindOf } from './definition-values';
import { JUMP_OPTION_KEYS } from '../steps/jumps';
import type { CompiledBranch, CompiledGroup, CompiledJumps, ResolvedParallelOptions } from './workflow-definition';

function isBranchSpec(value: unknown): value is BranchSpec {
  return kindOf(value) === 'branch';
}

const PARALLEL_OPTION_KEYS: readonly string[] = ['onError', 'join', 'maxConcurrency', 'compensation', 'into', ...JUMP_OPTION_KEYS];
const FOR_EACH_OPTION_KEYS: readonly string[] = ['onItemError', 'maxConcurrency', 'compensation', 'into', ...JUMP_OPTION_KEYS];

/** Checks a group's (or forEach's) options object against its known keys and value sets. */
function checkGroupOptions(o: Record<string, unknown>, keys: readonly string[], where: string): void {
  const bad = (field: string, value: unknown, expected: string): never => {
    throw new DefinitionError('BAD_OPTION', `${where}: option ${field} must be ${expected}, got ${quote(value)}`, {
      where,
      field,
    });
  };
  if (typeof o !== 'object' || o === null || Array.isArray(o)) bad('options', o, 'an object');
  checkKnownKeys(o, keys, where);
  const oneOf = (field: string, allowed: readonly string[]): void => {
    if (o[field] !== undefined && !allowed.includes(o[field] as string)) bad(field, o[field], allowed.map((a) => `'${a}'`).join(' or '));
  };
  oneOf('onError', ['failFast', 'completeAll']);
  oneOf('onItemError', ['failFast', 'continue']);
  oneOf('join', ['all', 'any']);
  oneOf('compensation', ['parallel', 'sequential']);
  const max = o.maxConcurrency;
  if (max !== undefined && max !== Number.POSITIVE_INFINITY && (typeof max !== 'number' || !Number.isInteger(max) || max < 1))
    bad('maxConcurrency', max, 'a positive integer (or Infinity)');
  if (o.into !== undefined && typeof o.into !== 'function') bad('into', o.into, 'a function');
  checkJumpOptions(o, where);
}

function resolveParallelOptions(spec: ParallelSpec, where: string): ResolvedParallelOptions {
  const o = spec.options ?? {};
  checkGroupOptions(o as Record<string, unknown>, PARALLEL_OPTION_KEYS, where);
  return {
    onError: o.onError ?? 'failFast',
    join: o.join ?? 'all',
    maxConcurrency: o.maxConcurrency ?? Number.POSITIVE_INFINITY,
    compensation: o.compensation ?? 'parallel',
    into: o.into,
  };
}

/** Where a node sits before its goto targets are resolved. */
export type Placed = { index: number; next: number; scope: string; jumps: CompiledJumps | null };

export function compileForEach(spec: ForEachSpec, place: Placed, where: string): CompiledGroup {
  if (typeof spec.name !== 'string' || !spec.name.trim()) {
    throw new DefinitionError('BAD_OPTION', `${where}: a forEach needs a non-empty name`, { where });
  }
  const at = `${where} forEach ${quote(spec.name)}`;
  if (typeof spec.items !== 'function') {
    throw new DefinitionError('BAD_OPTION', `${at}: items must be a function of the state returning an array`, { where: at, field: 'items' });
  }
  if (!Array.isArray(spec.steps) || spec.steps.length === 0) {
    throw new DefinitionError('EMPTY_GROUP', `${at} has no item steps; give it at least one`, { group: spec.name });
  }
  const o = spec.options ?? {};
  checkGroupOptions(o as Record<string, unknown>, FOR_EACH_OPTION_KEYS, at);
  const steps = spec.steps.map((s, i) => compileBranchStep(s, i, `${at} item step ${i}`));
  return {
    kind: 'group',
    name: spec.name,
    ...place,
    branches: [],
    options: {
      onError: o.onItemError === 'continue' ? 'completeAll' : 'failFast',
      join: 'all',
      maxConcurrency: o.maxConcurrency ?? 10,
      compensation: o.compensation ?? 'parallel',
      into: o.into,
    },
    each: { items: spec.items, steps },
  };
}

export function compileGroup(spec: ParallelSpec, place: Placed, where: string): CompiledGroup {
  if (typeof spec.name !== 'string' || !spec.name.trim()) {
    throw new DefinitionError('BAD_OPTION', `${where}: a parallel group needs a non-empty name`, { where });
  }
  const groupWhere = `${where} group ${quote(spec.name)}`;
  if (!Array.isArray(spec.branches) || spec.branches.length === 0) {
    throw new DefinitionError('EMPTY_GROUP', `${groupWhere} has no branches; give it at least one`, {
      group: spec.name,
    });
  }
  const options = resolveParallelOptions(spec, groupWhere);
  const keys = new Set<string>();
  const names = new Set<string>();
  const branches: CompiledBranch[] = spec.branches.map((raw: unknown, b) => {
    const branchWhere = `${groupWhere} branch ${b}`;
    let name: string | undefined;
    let returns: string | undefined;
    let stepList: readonly unknown[];
    if (isBranchSpec(raw)) {
      name = raw.name;
      returns = raw.returns;
      stepList = raw.steps;
      if (typeof name !== 'string' || !name.trim())
        throw new DefinitionError('BAD_OPTION', `${branchWhere} needs a non-empty name`, { group: spec.name });
      if (returns !== undefined && (typeof returns !== 'string' || !returns.trim()))
        throw new DefinitionError('BAD_OPTION', `${branchWhere}: returns must be a non-empty string, got ${quote(returns)}`, { group: spec.name });
    } else {
      stepList = Array.isArray(raw) ? (raw as readonly unknown[]) : [raw];
    }
    if (stepList.length === 0) {
      throw new DefinitionError('EMPTY_GROUP', `${branchWhere} is an empty sequence; give it at least one step`, {
        group: spec.name,
      });
    }
    const steps = stepList.map((s, i) => compileBranchStep(s, i, `${branchWhere} step ${i}`));
    const branchName = name ?? steps.map((s) => s.name).join('+');
    const key = returns ?? branchName;
    if (names.has(branchName)) {
      throw new DefinitionError('DUPLICATE_BRANCH_KEY', `${groupWhere} has two branches named ${quote(branchName)}`, {
        group: spec.name,
        branch: branchName,
      });
    }
    if (keys.has(key)) {
      throw new DefinitionError('DUPLICATE_BRANCH_KEY', `${groupWhere} has two branches with the result key ${quote(key)}`, {
        group: spec.name,
        key,
      });
    }
    names.add(branchName);
    keys.add(key);
    return { name: branchName, key, steps };
  });
  return { kind: 'group', name: spec.name, ...place, branches, options };
}
