import type { BusMessage } from '../types.js';

export type BusHandler = (msg: BusMessage) => void;

/** The part of the app's (pino) logger a bus reports connection trouble to. */
export interface BusLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Carries committed notifications and per-user state changes to every instance's hub.
 * In-process (one instance) and Redis pub/sub (several) implement it.
 * A bus delivers each message to every subscriber, the publishing instance's included, in publish
 * order; notifications in strictly increasing id order, each once (Subscription relies on it).
 */
export interface Bus {
  publish(msg: BusMessage): Promise<void>;
  /** Returns the function that unsubscribes. */
  subscribe(handler: BusHandler): () => void;
  /** Hands the bus the app's logger, once the app exists (the bus is created first). */
  useLogger?(log: BusLogger): void;
  ping(): Promise<void>;
  close(): Promise<void>;
}
