import type { FastifyInstance } from 'fastify';
import type { RetentionConfig } from '../config.js';
import type { Store } from '../store/store.js';

export interface RetentionOptions extends RetentionConfig {
  store: Store;
}

const dayMs = 86_400_000;

/**
 * The retention job: prunes the store once at start and then every `intervalMs`, while the app runs.
 * Runs never overlap, and closing the app stops the job and waits for a run in progress, which stops
 * at its next batch, so the store is never used after it is closed.
 */
export async function retentionPlugin(app: FastifyInstance, opts: RetentionOptions): Promise<void> {
  const { store, days, perUser, intervalMs } = opts;
  if (days === 0 && perUser === 0) return;
  const stop = new AbortController();
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const run = () => {
    if (running) return;
    const started = Date.now();
    running = store
      .prune({ olderThan: days > 0 ? new Date(started - days * dayMs) : undefined, perUser: perUser || undefined, signal: stop.signal })
      .then(
        (deleted) => {
          if (deleted > 0) app.log.info({ deleted, ms: Date.now() - started }, 'retention pruned notifications');
        },
        (err: unknown) => app.log.error({ err }, 'retention run failed; retrying at the next interval'),
      )
      .finally(() => (running = undefined));
  };

  app.addHook('onReady', async () => {
    timer = setInterval(run, intervalMs);
    // The job must never keep the process alive on its own.
    timer.unref();
    run();
  });
  app.addHook('onClose', async () => {
    clearInterval(timer);
    stop.abort();
    await running;
  });
}
