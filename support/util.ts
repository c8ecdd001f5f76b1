// Small process helpers shared by the tests and the bench. No tap and no app here: importing tap
// into a plain process (the bench) takes over its uncaught-error reporting.
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectFile } from '../src/paths.js';

export function tempDir(prefix = 'herald-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A port nobody listens on right now (the OS picks it), so a server can be started, stopped and started again on it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The node options `npm start` runs Herald with (package.json's start script): the bench and the tests run the built server with them too. */
export function startNodeArgs(): string[] {
  const pkg = JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { scripts: { start: string } };
  const [node, ...rest] = pkg.scripts.start.split(/\s+/);
  const script = rest.findIndex((a) => !a.startsWith('-'));
  if (node !== 'node' || script < 0) throw new Error(`package.json's start script does not run a script with node: ${pkg.scripts.start}`);
  return rest.slice(0, script);
}
