import { InstanceStatus, isFinalStatus } from '../../core/flow-fields';

/** The statuses of instances that are not finished, in declaration order. */
export const UNFINISHED_STATUSES: readonly string[] = Object.values(InstanceStatus).filter((s) => !isFinalStatus(s));
