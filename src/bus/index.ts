import type { Config } from '../config.js';
import type { Bus } from './bus.js';
import { MemoryBus } from './memory.js';

/** The bus named by HERALD_BUS: "memory" (default, one process) or a redis:// URL. */
export async function createBus(config: Config): Promise<Bus> {
  if (config.bus !== 'memory') throw new Error('the Redis bus is not built yet: set HERALD_BUS=memory');
  return new MemoryBus();
}
