// Observer registrations checked: each is an object or class with at least one hook, optionally critical, and none
// registered twice.
import { DefinitionError } from '../errors/definition-error';
import { OBSERVER_HOOKS, OBSERVER_WRAPPERS } from '../observers/observer';
import { describe } from './definition-values';
import type { ObserverEntry } from './workflow-definition';

/** Every member an observer may define: its hooks and its wrappers. */
const OBSERVER_MEMBERS: readonly string[] = [...OBSERVER_HOOKS, ...OBSERVER_WRAPPERS];

/**
 * Validates observer registrations; `owner` names where they were given (a workflow, or the runtime).
 * @throws {@link DefinitionError} `BAD_OBSERVER`
 */
export function compileObservers(specs: readonly unknown[], owner: string, alongside: readonly ObserverEntry[] = []): ObserverEntry[] {
  if (!Array.isArray(specs)) throw new DefinitionError('BAD_OBSERVER', `${owner}: observers must be an array`, {});
  const entries = specs.map((o, i) => compileObserver(o, `${owner} observer ${i}`, i));
  const seen = new Set<unknown>(alongside.map((e) => e.observer));
  for (const [i, entry] of entries.entries()) {
    if (seen.has(entry.observer)) {
      throw new DefinitionError(
        'DUPLICATE_OBSERVER',
        `${owner} observer ${i} (${entry.label}) is registered ${alongside.some((e) => e.observer === entry.observer) ? 'by the workflow and the runtime both' : 'twice'}: each hook would run twice for every step; register it once`,
        { where: owner, observer: entry.label },
      );
    }
    seen.add(entry.observer);
  }
  return entries;
}

function compileObserver(spec: unknown, where: string, i: number): ObserverEntry {
  let target: unknown = spec;
  let critical = false;
  if (typeof spec === 'object' && spec !== null && 'observer' in spec) {
    target = (spec).observer;
    const c = (spec as { critical?: unknown }).critical;
    if (c !== undefined && typeof c !== 'boolean')
      throw new DefinitionError('BAD_OBSERVER', `${where}: critical must be a boolean`, { where });
    critical = c === true;
  }
  if (typeof target === 'function') {
    const proto = (target as { prototype?: Record<string, unknown> }).prototype ?? {};
    if (!OBSERVER_MEMBERS.some((h) => typeof proto[h] === 'function')) {
      throw new DefinitionError('BAD_OBSERVER', `${where}: ${describe(target)} has none of the hooks ${OBSERVER_MEMBERS.join(', ')}`, {
        where,
      });
    }
    return { observer: target as ObserverEntry['observer'], critical, label: (target as { name: string }).name };
  }
  if (typeof target !== 'object' || target === null) {
    throw new DefinitionError('BAD_OBSERVER', `${where}: ${describe(target)} is not an observer`, { where });
  }
  const hooks = target as Record<string, unknown>;
  const present = OBSERVER_MEMBERS.filter((h) => hooks[h] !== undefined);
  const notFunctions = present.filter((h) => typeof hooks[h] !== 'function');
  if (present.length === 0 || notFunctions.length > 0) {
    throw new DefinitionError(
      'BAD_OBSERVER',
      notFunctions.length > 0
        ? `${where}: ${notFunctions.join(', ')} must be functions`
        : `${where}: ${describe(target)} has none of the hooks ${OBSERVER_MEMBERS.join(', ')}`,
      { where },
    );
  }
  const ctorName = (target as { constructor?: { name?: string } }).constructor?.name;
  return {
    observer: target as ObserverEntry['observer'],
    critical,
    label: ctorName && ctorName !== 'Object' ? ctorName : `observer#${i}`,
  };
}
