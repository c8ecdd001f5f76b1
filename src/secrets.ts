import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import webpush from 'web-push';
import type { Config } from './config.js';

/** The VAPID key pair push services know this deployment by (base64url, uncompressed P-256). */
export interface VapidKeys {
  publicKey: string;
  privateKey: string;
}

export interface Secrets {
  jwtSecret: string;
  publisherKey: string;
  vapid: VapidKeys;
  /** Which of them were generated (and kept in the data dir) rather than configured. */
  generated: { jwtSecret: boolean; publisherKey: boolean; vapid: boolean };
}

/** Where generated secrets are kept. */
export const secretsFile = (config: Pick<Config, 'dataDir'>): string => join(config.dataDir, 'secrets.json');

/** Writes the file readable by its owner only, also when it already existed with a looser mode. */
function keep(file: string, text: string): void {
  const fd = openSync(file, 'w', 0o600);
  try {
    // The mode of openSync applies only to a new file; this is done before the secrets are in it.
    fchmodSync(fd, 0o600);
    writeFileSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

/**
 * The configured JWT secret and publisher key, or ones generated on first run and kept in
 * `<data dir>/secrets.json` (mode 0600), so tokens stay valid across restarts with zero configuration.
 */
export function loadSecrets(config: Config): Secrets {
  const file = secretsFile(config);
  let kept: Partial<Record<'jwtSecret' | 'publisherKey', string> & { vapid: VapidKeys }> = {};
  try {
    kept = JSON.parse(readFileSync(file, 'utf8')) as typeof kept;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const jwtSecret = config.auth.jwtSecret ?? kept.jwtSecret ?? randomBytes(32).toString('base64url');
  const publisherKey = config.auth.publisherKey ?? kept.publisherKey ?? `hpk_${randomBytes(24).toString('base64url')}`;
  const { vapidPublicKey, vapidPrivateKey } = config.push;
  // Kept once generated: browsers subscribed with this public key, and a new one would orphan every subscription.
  const vapid = vapidPublicKey && vapidPrivateKey ? { publicKey: vapidPublicKey, privateKey: vapidPrivateKey } : (kept.vapid ?? webpush.generateVAPIDKeys());
  const generated = {
    jwtSecret: config.auth.jwtSecret === undefined,
    publisherKey: config.auth.publisherKey === undefined,
    vapid: vapidPublicKey === undefined,
  };
  if (generated.jwtSecret || generated.publisherKey || generated.vapid) {
    const toKeep = {
      ...(generated.jwtSecret ? { jwtSecret } : {}),
      ...(generated.publisherKey ? { publisherKey } : {}),
      ...(generated.vapid ? { vapid } : {}),
    };
    if (toKeep.jwtSecret !== kept.jwtSecret || toKeep.publisherKey !== kept.publisherKey || toKeep.vapid !== kept.vapid) {
      mkdirSync(config.dataDir, { recursive: true });
      keep(file, JSON.stringify(toKeep, null, 2) + '\n');
    }
  }
  return { jwtSecret, publisherKey, vapid, generated };
}
