import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';

export interface Secrets {
  jwtSecret: string;
  publisherKey: string;
  /** Which of them were generated (and kept in the data dir) rather than configured. */
  generated: { jwtSecret: boolean; publisherKey: boolean };
}

/**
 * The configured JWT secret and publisher key, or ones generated on first run and kept in
 * `<data dir>/secrets.json` (mode 0600), so tokens stay valid across restarts with zero configuration.
 */
export function loadSecrets(config: Config): Secrets {
  const file = join(config.dataDir, 'secrets.json');
  let kept: Partial<Record<'jwtSecret' | 'publisherKey', string>> = {};
  try {
    kept = JSON.parse(readFileSync(file, 'utf8')) as typeof kept;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const jwtSecret = config.jwtSecret ?? kept.jwtSecret ?? randomBytes(32).toString('base64url');
  const publisherKey = config.publisherKey ?? kept.publisherKey ?? `hpk_${randomBytes(24).toString('base64url')}`;
  const generated = { jwtSecret: config.jwtSecret === undefined, publisherKey: config.publisherKey === undefined };
  if (generated.jwtSecret || generated.publisherKey) {
    const toKeep = {
      ...(generated.jwtSecret ? { jwtSecret } : {}),
      ...(generated.publisherKey ? { publisherKey } : {}),
    };
    if (toKeep.jwtSecret !== kept.jwtSecret || toKeep.publisherKey !== kept.publisherKey) {
      mkdirSync(config.dataDir, { recursive: true });
      writeFileSync(file, JSON.stringify(toKeep, null, 2) + '\n', { mode: 0o600 });
    }
  }
  return { jwtSecret, publisherKey, generated };
}
