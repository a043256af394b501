/** Where a node may jump: the `goto` targets it declares, checked when the workflow is defined. */
export interface JumpOptions {
  /**
   * The names of the nodes this node's result (or `into`) may name in `goto(target, state)`. Every target must
   * exist in the workflow, in the node's own block or an enclosing one; a goto to a name not declared here fails
   * the step with `UNDECLARED_GOTO_TARGET`. @default none (goto is refused)
   */
  readonly goto?: readonly string[];
  /**
   * Allows backward targets (loops), at most `max` backward jumps from this node per instance; one more fails
   * the step with `LOOP_LIMIT_EXCEEDED`. Without it a backward target is a definition error. @default none
   */
  readonly allowLoop?: { readonly max: number };
}

export const JUMP_OPTION_KEYS = ['goto', 'allowLoop'] as const;
