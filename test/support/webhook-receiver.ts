// A webhook receiver on a loopback port, as an app would run one: every request's signature is
// checked with the `standardwebhooks` package, and the test decides each answer.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Webhook } from 'standardwebhooks';
import type { Json } from './http.js';
import { Received } from './received.js';

export interface WebhookRequest {
  id: string;
  /** Whether `standardwebhooks` accepted its signature. */
  verified: boolean;
  /** The verified payload (the raw body parsed, when not verified). */
  payload: Json;
  /** Which attempt of this webhook-id it is, from 1. */
  attempt: number;
}

export interface Receiver {
  url: string;
  requests: WebhookRequest[];
  /** Requests whose signature verified, of one event type. */
  of(type: string): WebhookRequest[];
  waitFor(pred: (requests: WebhookRequest[]) => boolean, ms?: number): Promise<void>;
  /** The status to answer (or 'hang' to never answer), given the request; 200 by default. */
  answer: (r: WebhookRequest) => number | 'hang';
  close(): Promise<void>;
}

/** A test-only signing secret: `whsec_` and 32 bytes in base64. */
export const webhookSecret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

export async function startReceiver(secret = webhookSecret): Promise<Receiver> {
  const verifier = new Webhook(secret);
  const received = new Received<WebhookRequest>((rs) => JSON.stringify(rs.map((r) => [r.payload?.type, r.id, r.attempt])));
  const attempts = new Map<string, number>();
  const hanging = new Set<ServerResponse>();
  const receiver: Receiver = {
    url: '',
    requests: received.items,
    of: (type) => received.items.filter((r) => r.verified && r.payload?.type === type),
    waitFor: (pred, ms = 10_000) => received.waitFor(pred, ms),
    answer: () => 200,
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['webhook-id']);
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      let verified = true;
      let payload: Json;
      try {
        payload = verifier.verify(body, req.headers as Record<string, string>);
      } catch {
        verified = false;
        payload = JSON.parse(body);
      }
      const r = { id, verified, payload, attempt };
      received.push(r);
      const status = receiver.answer(r);
      if (status === 'hang') hanging.add(res);
      else res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  receiver.url = `http://127.0.0.1:${address.port}/hooks`;
  return receiver;
}
