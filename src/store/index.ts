import type { Config } from '../config.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './store.js';

/** The store named by HERALD_STORE: a SQLite file path (default) or a postgres:// URL. */
export async function createStore(config: Config): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(config.store)) {
    throw new Error('the PostgreSQL store is not built yet: set HERALD_STORE to a SQLite file path');
  }
  return new SqliteStore(config.store, config.sqliteSync);
}
