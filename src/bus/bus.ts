import type { BusMessage } from '../types.js';

export type BusHandler = (msg: BusMessage) => void;

/**
 * Carries committed notifications and per-user state changes to every instance's hub.
 * In-process (one instance) and Redis pub/sub (several) implement it.
 * A bus delivers each message to every subscriber, the publishing instance's included, in publish order.
 */
export interface Bus {
  publish(msg: BusMessage): Promise<void>;
  /** Returns the function that unsubscribes. */
  subscribe(handler: BusHandler): () => void;
  ping(): Promise<void>;
  close(): Promise<void>;
}
