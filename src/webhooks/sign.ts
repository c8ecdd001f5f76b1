import { createHmac } from 'node:crypto';

/**
 * The Standard Webhooks signature (v1): HMAC-SHA256, keyed with the base64 part of the `whsec_`
 * secret, over `<webhook-id>.<webhook-timestamp>.<body>`, as `v1,<base64>`.
 */
export function signature(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}
