import type { BusMessage } from '../types.js';
import type { Bus, BusHandler } from './bus.js';

/** The embedded bus: one process, so delivery is a synchronous call to each subscriber. */
export class MemoryBus implements Bus {
  private readonly handlers = new Set<BusHandler>();

  async publish(msg: BusMessage): Promise<void> {
    for (const h of this.handlers) h(msg);
  }

  subscribe(handler: BusHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
