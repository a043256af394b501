import { SagaflowError } from './sagaflow-error';

/** Codes of {@link DefinitionError}: mistakes in a workflow definition, caught when it is defined. */
export const DefinitionErrorCode = {
  NoSteps: 'NO_STEPS',
  DuplicateName: 'DUPLICATE_NAME',
  NotAStep: 'NOT_A_STEP',
  UndecoratedStep: 'UNDECORATED_STEP',
  BadObserver: 'BAD_OBSERVER',
  DuplicateObserver: 'DUPLICATE_OBSERVER',
  EmptyGroup: 'EMPTY_GROUP',
  DuplicateBranchKey: 'DUPLICATE_BRANCH_KEY',
  UnknownGotoTarget: 'UNKNOWN_GOTO_TARGET',
  UnreachableGotoTarget: 'UNREACHABLE_GOTO_TARGET',
  GotoBackward: 'GOTO_BACKWARD',
  GotoNotAllowed: 'GOTO_NOT_ALLOWED',
  UnknownRateLimiter: 'UNKNOWN_RATE_LIMITER',
  BadOption: 'BAD_OPTION',
  BadStateClass: 'BAD_STATE_CLASS',
  NotAWorkflow: 'NOT_A_WORKFLOW',
} as const;
export type DefinitionErrorCode = (typeof DefinitionErrorCode)[keyof typeof DefinitionErrorCode];

/** A workflow, step or group definition is invalid. Thrown when it is defined, never at run time. */
export class DefinitionError extends SagaflowError {
  declare readonly code: DefinitionErrorCode;
  constructor(code: DefinitionErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details);
  }
}
