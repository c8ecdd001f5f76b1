import type { BusConfig } from '../config.js';
import type { Store } from '../store/store.js';
import type { Bus } from './bus.js';
import { MemoryBus } from './memory.js';
import { RedisBus } from './redis.js';

/**
 * The bus named by HERALD_BUS: "memory" (default, one process) or a redis:// URL. The Redis bus
 * re-reads from the store whatever pub/sub lost.
 */
export async function createBus(config: BusConfig, store: Store): Promise<Bus> {
  if (config.location === 'memory') return new MemoryBus();
  return RedisBus.open(config.location, store, config.resyncMs, config.channel);
}
