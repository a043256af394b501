import { setImmediate as nextTurn } from 'node:timers/promises';
import { WriteQueue } from '../src/store/typeorm/write-queue';
import type { Exec } from '../src/store/typeorm/dialect';

/** A queue on a lane that records every statement it is given, in order. */
function recordingQueue(): { queue: WriteQueue; log: string[] } {
  const log: string[] = [];
  const exec: Exec = (sql) => {
    log.push(sql);
    return Promise.resolve({ rows: [], affected: 1 });
  };
  const queue = new WriteQueue({ connect: () => Promise.resolve({ exec, release: () => undefined }), maxBatch: 100 });
  return { queue, log };
}

const write = (queue: WriteQueue, name: string): Promise<unknown> => queue.submit((x) => x(name));

describe('the group-commit write queue', () => {
  it('commits a write that finds the queue idle at once, and lets the writes behind it in the same turn share the next batch', async () => {
    const { queue, log } = recordingQueue();
    await nextTurn();
    await nextTurn();
    await Promise.all([write(queue, 'a'), write(queue, 'b'), write(queue, 'c')]);
    expect(log).toEqual(['BEGIN', 'a', 'COMMIT', 'BEGIN', 'b', 'c', 'COMMIT']);
    expect(queue.stats).toEqual({ transactions: 2, writes: 3, largestBatch: 2 });
  });

  it('lets writes that follow a commit at once (a load) wait a turn and share a batch', async () => {
    const { queue, log } = recordingQueue();
    await write(queue, 'first');
    await Promise.all([write(queue, 'x'), write(queue, 'y'), write(queue, 'z')]);
    expect(log).toEqual(['BEGIN', 'first', 'COMMIT', 'BEGIN', 'x', 'y', 'z', 'COMMIT']);
  });
});
