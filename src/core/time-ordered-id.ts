import { randomFillSync } from 'node:crypto';

/** Random bytes drawn from the system's generator a batch at a time (8 per id). */
const POOL = Buffer.alloc(4096);
let poolAt = POOL.length;

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The millisecond of the last id, and the counter within it (12 bits). */
let lastMs = -1;
let counter = 0;

function hex(byte: number): string {
  return HEX[byte & 0xff] as string;
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
 * @param now The time to take (ms since epoch); the wall clock by default, never a simulated one (an id only has
 *   to be unique and ordered, not to tell the runtime's time).
 */
export function timeOrderedId(now: number = Date.now()): string {
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
  return (
    hex(high >>> 16) +
    hex(high >>> 8) +
    hex(high) +
    hex(ms >>> 16) +
    '-' +
    hex(ms >>> 8) +
    hex(ms) +
    '-' +
    hex(0x70 | (counter >>> 8)) +
    hex(counter) +
    '-' +
    hex(0x80 | ((POOL[r] as number) & 0x3f)) +
    hex(POOL[r + 1] as number) +
    '-' +
    hex(POOL[r + 2] as number) +
    hex(POOL[r + 3] as number) +
    hex(POOL[r + 4] as number) +
    hex(POOL[r + 5] as number) +
    hex(POOL[r + 6] as number) +
    hex(POOL[r + 7] as number)
  );
}
