import { MemoryStore } from '../src';
import { storeContract } from './support/store-contract';

describe('the in-memory store', () => {
  storeContract(() => Promise.resolve(new MemoryStore()));
});
