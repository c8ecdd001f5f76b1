// A load process standing in for the browsers' push services (ingest-push): answers every POST 201 at
// once and counts them. A real push service is remote and costs this machine nothing; this one runs
// at nice 19 (set by the orchestrator), so its CPU comes out of what is idle, not out of the share of
// the Herald and the publisher being measured. Driven over IPC by scenarios/ingest-push.ts.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from './lib.js';

let received = 0;
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.method === 'POST') received++;
    res.writeHead(201).end();
  });
});

serve(async (msg) => {
  if (msg.op === 'start') {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { op: 'start', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }
  if (msg.op === 'count') return { op: 'count', received };
  throw new Error(`unknown op ${msg.op}`);
});
