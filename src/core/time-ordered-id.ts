import { randomFillSync } from 'node:crypto';

/** Random bytes drawn from the system's generator a batch at a time (8 per id). */
const POOL = Buffer.alloc(4096);
let poolAt = POOL.length;

/** The id is written here as text, then read out as one string (concatenating 20 pieces made a rope of 19 nodes). */
const OUT = Buffer.alloc(36);
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const DASH = 0x2d;

/** The millisecond of the last id, and the counter within it (12 bits). */
let lastMs = -1;
let counter = 0;

/** Writes the low byte of `byte` as two hex digits at `at`. */
function put(at: number, byte: number): void {
  OUT[at] = HEX_DIGITS[(byte >>> 4) & 15] as number;
  OUT[at + 1] = HEX_DIGITS[byte & 15] as number;
}

/**
 * A new UUID of version 7 (RFC 9562): the Unix time in milliseconds, then a counter, then 62 random bits. Ids made
 * in one process sort in the order they were made (the counter starts at a random value below 2048 each millisecond
 * and goes up; should it run out, the time part moves on by a millisecond), and ids from different processes do
 * not collide (62 random bits each, as well as the counter's random start).
 *
 * Generated instance ids are made so because a database keeps an index in key order: ids that follow each other
 * put new instances, and the history and wait rows keyed by them, next to the last ones written, where random ids
 * put every new row on another page of every index (on SQLite a page written per row at each commit).
 *
 * @param time The time to take (ms since epoch, a fraction dropped); the wall clock by default, never a simulated
 *   one (an id only has to be unique and ordered, not to tell the runtime's time).
 */
export function timeOrderedId(time: number = Date.now()): string {
  const now = Math.floor(time);
  if (now > lastMs) {
    lastMs = now;
    counter = Math.floor(Math.random() * 2048);
  } else if (++counter > 0xfff) {
    lastMs += 1;
    counter = 0;
  }
  if (poolAt + 8 > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const r = poolAt;
  poolAt += 8;
  const ms = lastMs;
  const high = Math.floor(ms / 0x1000000); // the top 24 of 48 bits
  put(0, high >>> 16);
  put(2, high >>> 8);
  put(4, high);
  put(6, ms >>> 16);
  OUT[8] = DASH;
  put(9, ms >>> 8);
  put(11, ms);
  OUT[13] = DASH;
  put(14, 0x70 | (counter >>> 8));
  put(16, counter);
  OUT[18] = DASH;
  put(19, 0x80 | ((POOL[r] as number) & 0x3f));
  put(21, POOL[r + 1] as number);
  OUT[23] = DASH;
  for (let k = 0; k < 6; k++) put(24 + 2 * k, POOL[r + 2 + k] as number);
  return OUT.toString('latin1', 0, 36);
}
