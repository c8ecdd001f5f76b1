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
  /** Signs outgoing webhooks; undefined when none is configured and no webhook endpoint is either. */
  webhookSecret: string | undefined;
  vapid: VapidKeys;
  /** Which of them were generated (and kept in the data dir) rather than configured. */
  generated: { jwtSecret: boolean; publisherKey: boolean; webhookSecret: boolean; vapid: boolean };
}

type Kept = Partial<Record<'jwtSecret' | 'publisherKey' | 'webhookSecret', string> & { vapid: VapidKeys }>;

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
  let kept: Kept = {};
  try {
    kept = JSON.parse(readFileSync(file, 'utf8')) as typeof kept;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const jwtSecret = config.auth.jwtSecret ?? kept.jwtSecret ?? randomBytes(32).toString('base64url');
  const publisherKey = config.auth.publisherKey ?? kept.publisherKey ?? `hpk_${randomBytes(24).toString('base64url')}`;
  // Generated only once there is something to sign: an instance without webhooks keeps its file as it was.
  const wantsWebhookSecret = config.webhooks.secret === undefined && (config.webhooks.endpoints.length > 0 || kept.webhookSecret !== undefined);
  const webhookSecret = config.webhooks.secret ?? (wantsWebhookSecret ? (kept.webhookSecret ?? `whsec_${randomBytes(32).toString('base64')}`) : undefined);
  const { vapidPublicKey, vapidPrivateKey } = config.push;
  // Kept once generated: browsers subscribed with this public key, and a new one would orphan every subscription.
  const vapid = vapidPublicKey && vapidPrivateKey ? { publicKey: vapidPublicKey, privateKey: vapidPrivateKey } : (kept.vapid ?? webpush.generateVAPIDKeys());
  const generated = {
    jwtSecret: config.auth.jwtSecret === undefined,
    publisherKey: config.auth.publisherKey === undefined,
    webhookSecret: wantsWebhookSecret,
    vapid: vapidPublicKey === undefined,
  };
  const toKeep: Kept = {
    ...(generated.jwtSecret ? { jwtSecret } : {}),
    ...(generated.publisherKey ? { publisherKey } : {}),
    ...(generated.webhookSecret ? { webhookSecret } : {}),
    ...(generated.vapid ? { vapid } : {}),
  };
  // A kept VAPID pair is reused as the same object, so `!==` tells a new pair from the kept one.
  const names = ['jwtSecret', 'publisherKey', 'webhookSecret', 'vapid'] as const;
  if (names.some((k) => toKeep[k] !== undefined) && names.some((k) => toKeep[k] !== kept[k])) {
    mkdirSync(config.dataDir, { recursive: true });
    keep(file, JSON.stringify(toKeep, null, 2) + '\n');
  }
  return { jwtSecret, publisherKey, webhookSecret, vapid, generated };
}
