// The retry schedule of a failed webhook: doubling from the base, jittered within the upper half, capped at an hour.
import t from 'tap';
import { backoffMs } from '../../src/webhooks/dispatcher.js';

t.test('each retry waits between half and all of base × 2^(attempts-1), at most an hour', async (t) => {
  for (const [attempts, full] of [[1, 5_000], [2, 10_000], [3, 20_000], [8, 640_000], [20, 3_600_000]] as const) {
    const waits = Array.from({ length: 200 }, () => backoffMs(5_000, attempts));
    t.ok(waits.every((w) => w >= full / 2 && w <= full), `attempt ${attempts}: within [${full / 2}, ${full}]`);
    t.ok(new Set(waits).size > 100, `attempt ${attempts}: jittered, so failed receivers are not hit in step`);
  }
});
