import { Direction, InstanceStatus, StepFunc } from '../core/flow-fields';
import type { HistoryEntry, HistoryKind } from './history-entry';
import type { StateChangeOp } from './state-change';

// A line's first slot, its header: which optional fields follow (a bit each), how its time is kept, and its kind,
// direction, function and status as codes (with room for the attempt when it is small).
const GROUP = 1;
const BRANCH = 2;
const OUTCOME = 4;
const CODE = 8;
const NOTE = 16;
const STATE_CHANGE = 32;
/** The same time as the line before: no time slot. */
const SAME_AT = 64;
/** The time is kept as it is, not as an offset from the log's base (an offset would not give it back exactly). */
const RAW_AT = 128;
/** A line given as an object of another shape (a field sagaflow does not know, one left undefined): kept whole. */
const WHOLE = 256;
const KIND_SHIFT = 9; // 5 bits
const DIRECTION_SHIFT = 14; // 2 bits
const FUNC_SHIFT = 16; // 3 bits
const STATUS_SHIFT = 19; // 3 bits
const ATTEMPT_SHIFT = 22; // 8 bits: 0 means the attempt has its own slot (the header stays below 2^30, a small integer)
const ATTEMPT_MAX = 254;

/** The fields every line has, then all the fields of a line that the packed form keeps. */
const REQUIRED = ['at', 'kind', 'step', 'direction', 'func', 'attempt', 'status'] as const;
const FIELDS = new Set<string>([...REQUIRED, 'group', 'branch', 'outcome', 'code', 'note', 'stateChange']);

/** Whether the packed form gives `line` back as it is: only known fields, the required ones present, none undefined. */
function packable(line: HistoryEntry): boolean {
  for (const key of REQUIRED) if (!(key in line)) return false;
  for (const key of Object.keys(line)) if (!FIELDS.has(key) || (line as unknown as Record<string, unknown>)[key] === undefined) return false;
  return true;
}

/**
 * Small codes for the values a field takes (0 is kept for a value not in the list, which then has its own slot:
 * a line read from elsewhere may carry one).
 */
class Codes<T> {
  private readonly code = new Map<unknown, number>();
  /** The bits of a code, as a mask. */
  readonly mask: number;

  /** @param bits How many bits of the header the code takes: the values (and the 0) must fit. */
  constructor(
    readonly values: readonly T[],
    bits: number,
  ) {
    this.mask = (1 << bits) - 1;
    if (values.length > this.mask) throw new Error(`${values.length} values do not fit a code of ${bits} bits; widen the field in the header`);
    values.forEach((v, i) => this.code.set(v, i + 1));
  }

  of(value: T): number {
    return this.code.get(value) ?? 0;
  }

  /** The value of code `code` in `header` at `shift`, or undefined for code 0 (the value has its own slot). */
  at(header: number, shift: number): T | undefined {
    const code = (header >>> shift) & this.mask;
    return code === 0 ? undefined : this.values[code - 1];
  }
}

/** Every kind, each once (the type checks that none is missing); the order gives the codes, which are never stored. */
const KIND_NAMES: Record<HistoryKind, true> = {
  started: true,
  'step-started': true,
  'step-result': true,
  event: true,
  timeout: true,
  'retry-scheduled': true,
  'rollback-requested': true,
  resumed: true,
  finished: true,
  operator: true,
  throttled: true,
  'branch-taken': true,
  'undo-requested': true,
  blocked: true,
  unblocked: true,
  migrated: true,
  control: true,
};
const KINDS = new Codes(Object.keys(KIND_NAMES) as HistoryKind[], 5);
const DIRECTIONS = new Codes<Direction>(Object.values(Direction), 2);
const FUNCS = new Codes<StepFunc | null>([null, ...Object.values(StepFunc)], 3);
const STATUSES = new Codes<InstanceStatus>(Object.values(InstanceStatus), 3);

/**
 * History lines kept packed, one after the other in a single array, and built as objects only when read
 * ({@link entries}). A line is a header number (its kind, direction, function, status and a small attempt as codes,
 * and which of the other fields it has), its time as an offset from the log's base unless it is the time of the
 * line before, its step, then the optional fields it has. The strings are the ones the engine already holds, so
 * appending a line makes no object: an instance's history is one array of a few slots a line, where it was an
 * object of seven to thirteen fields a line (most of what a finished instance kept in memory, and a good part of the
 * collector's work on the in-memory path).
 */
export class HistoryLog {
  private slots: unknown[] = [];
  private count = 0;
  private lastAt = Number.NaN;

  /** @param base The time offsets are taken from (the instance's creation time keeps them small integers). */
  constructor(private readonly base = 0) {}

  /** A log holding `lines` (see {@link addEntry}). */
  static of(lines: readonly HistoryEntry[], base = 0): HistoryLog {
    const log = new HistoryLog(base);
    for (const e of lines) log.addEntry(e);
    return log;
  }

  /** Appends a line given as an object: packed when that gives it back as it is, else a copy of it kept whole. */
  addEntry(e: HistoryEntry): void {
    if (packable(e)) {
      this.add(e.at, e.kind, e.step, e.direction, e.func, e.attempt, e.status, e.group, e.branch, e.outcome, e.code, e.note, e.stateChange);
      return;
    }
    this.slots.push(WHOLE, structuredClone(e));
    this.lastAt = Number.NaN;
    this.count++;
  }

  /** How many lines it holds. */
  get length(): number {
    return this.count;
  }

  /** Appends one line; an optional field given as undefined is left out of it. */
  add(
    at: number,
    kind: HistoryKind,
    step: string | null,
    direction: Direction,
    func: StepFunc | null,
    attempt: number,
    status: InstanceStatus,
    group?: string,
    branch?: string,
    outcome?: string,
    code?: string,
    note?: string,
    stateChange?: readonly StateChangeOp[],
  ): void {
    const kindCode = KINDS.of(kind);
    const directionCode = DIRECTIONS.of(direction);
    const funcCode = FUNCS.of(func);
    const statusCode = STATUSES.of(status);
    const smallAttempt = Number.isInteger(attempt) && attempt >= 0 && attempt <= ATTEMPT_MAX;
    const offset = at - this.base;
    let header = (kindCode << KIND_SHIFT) | (directionCode << DIRECTION_SHIFT) | (funcCode << FUNC_SHIFT) | (statusCode << STATUS_SHIFT);
    if (smallAttempt) header |= (attempt + 1) << ATTEMPT_SHIFT;
    if (at === this.lastAt) header |= SAME_AT;
    else if (offset + this.base !== at) header |= RAW_AT;
    if (group !== undefined) header |= GROUP;
    if (branch !== undefined) header |= BRANCH;
    if (outcome !== undefined) header |= OUTCOME;
    if (code !== undefined) header |= CODE;
    if (note !== undefined) header |= NOTE;
    if (stateChange !== undefined) header |= STATE_CHANGE;
    const s = this.slots;
    s.push(header);
    if ((header & SAME_AT) === 0) s.push(header & RAW_AT ? at : offset);
    if (!smallAttempt) s.push(attempt);
    if (kindCode === 0) s.push(kind);
    if (directionCode === 0) s.push(direction);
    if (funcCode === 0) s.push(func);
    if (statusCode === 0) s.push(status);
    s.push(step);
    if (group !== undefined) s.push(group);
    if (branch !== undefined) s.push(branch);
    if (outcome !== undefined) s.push(outcome);
    if (code !== undefined) s.push(code);
    if (note !== undefined) s.push(note);
    if (stateChange !== undefined) s.push(stateChange);
    this.lastAt = at;
    this.count++;
  }

  /** Appends every line of `other` (which stays as it is). */
  addAll(other: HistoryLog): void {
    if (other.count === 0) return;
    if (other.base !== this.base) {
      for (const e of other.entries()) this.addEntry(e);
      return;
    }
    // Same base: the slots mean the same here (the first line of `other` always has its time). The length is read
    // first, so a log appended to itself ends.
    const from = other.slots;
    const to = this.slots;
    const n = from.length;
    for (let i = 0; i < n; i++) to.push(from[i]);
    this.count += other.count;
    this.lastAt = other.lastAt;
  }

  /** Drops the spare room the array grew (for a log that will not grow again, such as a finished instance's). */
  trim(): void {
    this.slots = this.slots.slice();
  }

  /**
   * The lines as objects, oldest first: fresh ones on every call, with the same keys in the same order whatever the
   * kind (a recorded state change is copied too, so nothing handed out aliases what the log keeps).
   */
  entries(): HistoryEntry[] {
    const s = this.slots;
    const out: HistoryEntry[] = [];
    let at = Number.NaN;
    for (let k = 0; k < s.length; ) {
      const header = s[k++] as number;
      if ((header & WHOLE) !== 0) {
        out.push(structuredClone(s[k++] as HistoryEntry));
        continue;
      }
      if ((header & SAME_AT) === 0) {
        const stored = s[k++] as number;
        at = header & RAW_AT ? stored : stored + this.base;
      }
      const small = header >>> ATTEMPT_SHIFT;
      const attempt = small === 0 ? (s[k++] as number) : small - 1;
      // Each field is its code in the header, or (code 0) the next slot. (`null` is a function's value, never code 0.)
      const kind = KINDS.at(header, KIND_SHIFT) ?? (s[k++] as HistoryKind);
      const direction = DIRECTIONS.at(header, DIRECTION_SHIFT) ?? (s[k++] as Direction);
      const funcCode = (header >>> FUNC_SHIFT) & FUNCS.mask;
      const func = funcCode === 0 ? (s[k++] as StepFunc | null) : (FUNCS.values[funcCode - 1] as StepFunc | null);
      const status = STATUSES.at(header, STATUS_SHIFT) ?? (s[k++] as InstanceStatus);
      const line: { -readonly [K in keyof HistoryEntry]?: HistoryEntry[K] } = { at, kind, step: s[k++] as string | null, direction, func, attempt, status };
      if (header & GROUP) line.group = s[k++] as string;
      if (header & BRANCH) line.branch = s[k++] as string;
      if (header & OUTCOME) line.outcome = s[k++] as string;
      if (header & CODE) line.code = s[k++] as string;
      if (header & NOTE) line.note = s[k++] as string;
      if (header & STATE_CHANGE) line.stateChange = structuredClone(s[k++] as readonly StateChangeOp[]);
      out.push(line as HistoryEntry);
    }
    return out;
  }
}

/** Where writes carry their lines packed, for a store that takes them so (see {@link packedWrites}). */
const LOG = Symbol('sagaflow.historyLog');

/** Marks a store that takes a transition's history lines packed ({@link historyLogOf}) instead of as objects. */
export const TAKES_HISTORY_LOG = Symbol('sagaflow.takesHistoryLog');

/** Whether `store` takes history lines packed: the engine then never builds them as objects when it saves. */
export function takesHistoryLog(store: object): boolean {
  return (store as { [TAKES_HISTORY_LOG]?: boolean })[TAKES_HISTORY_LOG] === true;
}

/**
 * Writes that carry `log` packed (only for a store that {@link takesHistoryLog}). Their `history` is built from the
 * log when something reads it (a wrapper around such a store, a subclass), once; the store itself takes the log.
 */
class PackedWrites {
  private lines: readonly HistoryEntry[] | undefined;
  readonly [LOG]: HistoryLog;

  constructor(log: HistoryLog) {
    this[LOG] = log;
  }

  get history(): readonly HistoryEntry[] {
    return (this.lines ??= this[LOG].entries());
  }

  /** As JSON: the lines, with the other fields set on these writes. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { history: this.history };
    for (const [key, value] of Object.entries(this)) if (key !== 'lines') out[key] = value;
    return out;
  }
}

/** Writes that carry `log` packed, with `history` built only if read (for a store that {@link takesHistoryLog}). */
export function packedWrites(log: HistoryLog): { readonly history: readonly HistoryEntry[]; readonly [LOG]: HistoryLog } {
  return new PackedWrites(log);
}

/** The packed lines of writes made by {@link packedWrites}; undefined for any other writes. */
export function historyLogOf(writes: object): HistoryLog | undefined {
  return (writes as { [LOG]?: HistoryLog })[LOG];
}
