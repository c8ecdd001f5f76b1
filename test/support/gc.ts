// Full garbage collections on demand, for tests that check with weak references that an open stream
// keeps nothing of what opened it.
import v8 from 'node:v8';
import vm from 'node:vm';
import { sleep } from '../../support/util.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Collects across a few turns: a WeakRef's target lives at least until the current job ends. */
export async function collectGarbage(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(10);
  }
}
