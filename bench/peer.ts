// The peer Herald is measured against: a minimal but realistic Node + Socket.IO notification server,
// as such services are usually first written. Subscribers connect with a JWT (same secret and claims
// as Herald), each socket joins a room per user, and POST /notifications emits to a user's room or to
// everyone. Notifications are kept in memory only (no durability, no catch-up): that spares the peer
// Herald's commit on every publish, so the comparison favours the peer.
// Env: PORT (0 = any), JWT_SECRET, PUBLISHER_KEY, PEER_SPIN_US (default 0: see `spin`). Prints "listening on http://..." when ready.
import http from 'node:http';
import { createVerifier } from 'fast-jwt';
import { Server } from 'socket.io';

const secret = process.env.JWT_SECRET ?? '';
const publisherKey = process.env.PUBLISHER_KEY ?? '';
if (secret.length < 32 || publisherKey.length < 16) throw new Error('set JWT_SECRET (>= 32 chars) and PUBLISHER_KEY (>= 16)');
const verify = createVerifier({ key: secret, algorithms: ['HS256'] });

interface Body {
  title?: unknown;
  body?: unknown;
  data?: unknown;
  type?: unknown;
  user?: unknown;
  broadcast?: unknown;
}

let nextId = 1;

const spinNs = BigInt(Math.round(Number(process.env.PEER_SPIN_US ?? 0) * 1000));

/**
 * Busy-waits PEER_SPIN_US on the event loop: the latency scenario's `--peer-spin-us` gives the peer's
 * event loop Herald's CPU per event, to show how much of a p99 on this machine is that CPU alone.
 */
function spin(): void {
  if (spinNs === 0n) return;
  const until = process.hrtime.bigint() + spinNs;
  while (process.hrtime.bigint() < until);
}

const server = http.createServer((req, res) => {
  const reply = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method !== 'POST' || req.url !== '/notifications') return reply(404, { error: 'not found' });
  if (req.headers.authorization !== `Bearer ${publisherKey}`) return reply(401, { error: 'unauthorized' });
  let raw = '';
  req.setEncoding('utf8');
  req.on('data', (d: string) => (raw += d));
  req.on('end', () => {
    let b: Body;
    try {
      b = JSON.parse(raw) as Body;
    } catch {
      return reply(400, { error: 'invalid JSON' });
    }
    if (typeof b.title !== 'string' || (typeof b.user !== 'string' && b.broadcast !== true)) {
      return reply(400, { error: 'title and one of user or broadcast are required' });
    }
    const n = {
      id: nextId++,
      title: b.title,
      body: typeof b.body === 'string' ? b.body : null,
      data: b.data ?? null,
      type: typeof b.type === 'string' ? b.type : null,
      topic: null,
      broadcast: b.broadcast === true,
      createdAt: new Date().toISOString(),
    };
    spin();
    if (n.broadcast) io.emit('notification', n);
    else io.to(`user:${b.user as string}`).emit('notification', n);
    reply(201, { ...n, users: n.broadcast ? null : [b.user] });
  });
});

const io = new Server(server, { transports: ['websocket', 'polling'], cors: { origin: true } });

io.use((socket, next) => {
  try {
    const claims = verify(String((socket.handshake.auth as { token?: unknown }).token ?? '')) as { sub?: unknown };
    if (typeof claims.sub !== 'string' || claims.sub === '') return next(new Error('no user'));
    socket.data.user = claims.sub;
    next();
  } catch {
    next(new Error('invalid token'));
  }
});

io.on('connection', (socket) => {
  void socket.join(`user:${socket.data.user as string}`);
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`peer listening on http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.on('SIGTERM', () => {
  void io.close();
  process.exit(0);
});
