// Throwaway Redis and PostgreSQL servers for a test file or subtest (support/backends.ts starts them).
import type { Test } from 'tap';
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from '../../support/backends.js';

/** A Redis and a PostgreSQL server, started together, stopped once `t` ends. */
export async function startBackends(t: Test): Promise<{ redis: RedisServer; postgres: PostgresServer }> {
  const [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  t.teardown(async () => {
    await redis.stop();
    await postgres.stop();
  });
  return { redis, postgres };
}
