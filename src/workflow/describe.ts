/** The text form of a workflow's diagram: its outline, indented as written. */
import { workflowDefinition, type WorkflowRef } from './workflow-decorator';
import type { OutlineNode, OutlineStep, WorkflowOutline } from './workflow-outline';

function stepLine(step: OutlineStep): string {
  const extras = [
    step.child === undefined ? undefined : `starts child ${step.child}`,
    step.goto === undefined ? undefined : `may goto ${step.goto.join(', ')}`,
    step.loop === undefined ? undefined : `loops at most ${step.loop}×`,
  ].filter((x) => x !== undefined);
  return `step ${step.name}${extras.length === 0 ? '' : ` (${extras.join('; ')})`}`;
}

function nodeLines(node: OutlineNode, indent: string, out: string[]): void {
  const deeper = `${indent}  `;
  switch (node.kind) {
    case 'step':
      out.push(`${indent}${stepLine(node)}`);
      return;
    case 'parallel': {
      const limit = node.maxConcurrency === null ? '' : `, at most ${node.maxConcurrency} at once`;
      out.push(`${indent}parallel ${node.name} (onError ${node.onError}, join ${node.join}, compensation ${node.compensation}${limit})`);
      for (const b of node.branches) {
        out.push(`${deeper}branch ${b.name}${b.key === b.name ? '' : ` → results.${b.key}`}`);
        for (const s of b.steps) out.push(`${deeper}  ${stepLine(s)}`);
      }
      return;
    }
    case 'forEach': {
      const limit = node.maxConcurrency === null ? '' : `, at most ${node.maxConcurrency} at once`;
      out.push(`${indent}forEach ${node.name} (onItemError ${node.onItemError}, compensation ${node.compensation}${limit})`);
      for (const s of node.steps) out.push(`${deeper}${stepLine(s)}`);
      return;
    }
    case 'when':
      out.push(`${indent}when ${node.name}`);
      out.push(`${deeper}then`);
      for (const n of node.then) nodeLines(n, `${deeper}  `, out);
      if (node.else.length > 0) {
        out.push(`${deeper}else`);
        for (const n of node.else) nodeLines(n, `${deeper}  `, out);
      }
      return;
  }
}

/** The readable outline of a stored {@link WorkflowOutline} (what `describe` prints for a definition). */
export function describeOutline(outline: WorkflowOutline): string {
  const out = [`workflow ${outline.name} · version ${outline.version} · fingerprint ${outline.fingerprint}`];
  for (const node of outline.nodes) nodeLines(node, '  ', out);
  return out.join('\n');
}

/**
 * A readable outline of a workflow definition: its steps, parallel groups with their branches, forEach item steps,
 * `when` blocks, child workflows and goto targets, indented as written — the text form of the inspector's diagram.
 * @example
 * console.log(describe(OrderCheckout));
 * // workflow order-checkout · version 1 · fingerprint 3f2a…
 * //   step reserve-inventory
 * //   step charge-payment
 * //   step ship
 */
export function describe(workflow: WorkflowRef): string {
  return describeOutline(workflowDefinition(workflow).outline);
}
