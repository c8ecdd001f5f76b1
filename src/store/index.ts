import { isPostgresUrl, type Config } from '../config.js';
import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './store.js';

/** The store named by HERALD_STORE: a SQLite file path (default) or a postgres:// URL. */
export async function createStore(config: Config): Promise<Store> {
  if (isPostgresUrl(config.store)) return PostgresStore.open(config.store);
  return new SqliteStore(config.store, config.sqliteSync);
}
