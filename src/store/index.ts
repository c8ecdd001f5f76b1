import { isPostgresUrl, type StoreConfig } from '../config.js';
import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './store.js';

/** The store named by HERALD_STORE: a SQLite file path (default) or a postgres:// URL. */
export async function createStore(config: StoreConfig): Promise<Store> {
  if (isPostgresUrl(config.location)) return PostgresStore.open(config.location);
  return SqliteStore.open(config.location, config.sqliteSync);
}
