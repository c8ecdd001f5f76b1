// A push service on a loopback port, as a browser vendor runs one: it checks each request's VAPID
// JWT (ES256, against the key in the header, which must be the server's) and decrypts the aes128gcm
// payload with the browser-side keys a test subscription holds, so real Web Push encryption round-trips.
import { createECDH, createPublicKey, randomBytes, verify, type ECDH } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import ece from 'http_ece';
import { sleep } from '../../support/util.js';
import { Received } from './received.js';

export interface ReceivedPush {
  /** The subscription (path) it was sent to. */
  device: string;
  payload: Record<string, unknown>;
  /** The VAPID JWT's claims, its signature verified. */
  claims: { aud: string; exp: number; sub: string };
  /** The VAPID JWT as sent (ES256 signatures are randomised: two equal ones are one JWT reused). */
  jwt: string;
  urgency: string | undefined;
}

/** A browser's side of one subscription: its ECDH key pair and auth secret, and the JSON it would register. */
export interface Device {
  name: string;
  ecdh: ECDH;
  auth: string;
  subscription: { endpoint: string; expirationTime: null; keys: { p256dh: string; auth: string } };
}

const b64url = (b: Buffer) => b.toString('base64url');

function verifyVapid(header: string | undefined, vapidPublicKey: string): Pick<ReceivedPush, 'claims' | 'jwt'> {
  const m = /^vapid t=([^,]+),\s*k=(.+)$/.exec(header ?? '');
  if (!m) throw new Error(`no VAPID authorization header: ${header}`);
  const [, jwt, k] = m;
  if (k !== vapidPublicKey) throw new Error('the VAPID key is not the server’s');
  const [head, body, sig] = jwt!.split('.');
  const point = Buffer.from(k, 'base64url');
  const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33, 65)) }, format: 'jwk' });
  const ok = verify('sha256', Buffer.from(`${head}.${body}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig!, 'base64url'));
  if (!ok) throw new Error('VAPID JWT signature does not verify');
  if (JSON.parse(Buffer.from(head!, 'base64url').toString()).alg !== 'ES256') throw new Error('not ES256');
  return { claims: JSON.parse(Buffer.from(body!, 'base64url').toString()), jwt: jwt! };
}

export class PushService {
  private readonly server = createServer((req, res) => void this.handle(req, res));
  private readonly devices = new Map<string, Device>();
  private readonly received = new Received<ReceivedPush>((p) => JSON.stringify(p.map((x) => [x.device, x.payload.id ?? x.payload.count])));
  readonly pushes = this.received.items;
  /** Every request's path and the status answered, valid or not. */
  readonly log: { device: string; status: number }[] = [];
  /** Answers to give next, per device, before the default 201 (e.g. [503, 201]); a header to add to each, a delay before it. */
  readonly script = new Map<string, { status: number; headers?: Record<string, string>; delayMs?: number }[]>();
  /** Called once a request is answered (the kill -9 test stops the server there). */
  onAnswer: ((status: number) => void) | undefined;
  url = '';

  constructor(private readonly vapidPublicKey: () => string) {}

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const a = this.server.address();
    if (!a || typeof a === 'string') throw new Error('no address');
    this.url = `http://127.0.0.1:${a.port}`;
  }

  device(name: string): Device {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = b64url(randomBytes(16));
    const d: Device = {
      name,
      ecdh,
      auth,
      subscription: { endpoint: `${this.url}/push/${name}`, expirationTime: null, keys: { p256dh: b64url(ecdh.getPublicKey()), auth } },
    };
    this.devices.set(name, d);
    return d;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const name = (req.url ?? '').replace(/^\/push\//, '');
    const answer = this.script.get(name)?.shift() ?? { status: 201 };
    try {
      const d = this.devices.get(name);
      if (!d) throw new Error(`unknown device ${name}`);
      if (req.headers['content-encoding'] !== 'aes128gcm') throw new Error(`content-encoding ${req.headers['content-encoding']}`);
      const { claims, jwt } = verifyVapid(req.headers.authorization, this.vapidPublicKey());
      if (claims.aud !== this.url) throw new Error(`aud ${claims.aud}`);
      if (claims.exp * 1000 < Date.now()) throw new Error('expired JWT');
      const plain = ece.decrypt(Buffer.concat(chunks), { version: 'aes128gcm', privateKey: d.ecdh, authSecret: d.auth });
      if (answer.status === 201) {
        const urgency = req.headers.urgency as string | undefined;
        this.received.push({ device: name, payload: JSON.parse(plain.toString()), claims, jwt, urgency });
      }
    } catch (err) {
      answer.status = 400;
      answer.headers = { 'x-test-error': String((err as Error).message).slice(0, 200) };
      process.stderr.write(`push service refused a request: ${(err as Error).message}\n`);
    }
    this.log.push({ device: name, status: answer.status });
    if (answer.delayMs) await sleep(answer.delayMs);
    res.writeHead(answer.status, answer.headers).end();
    this.onAnswer?.(answer.status);
  }

  ofDevice(name: string): ReceivedPush[] {
    return this.pushes.filter((p) => p.device === name);
  }

  waitFor(pred: (p: ReceivedPush[]) => boolean, ms = 10_000): Promise<void> {
    return this.received.waitFor(pred, ms);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
