// The bench as its smoke tests run it: the built `npm run bench`, in a child process.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { projectFile } from '../../src/paths.js';
import { tempDir } from '../../support/util.js';
import type { Json } from './http.js';

/**
 * Runs the built bench (`dist/bench/run.js`, which `npm test` builds first) with `args`, writing its
 * JSON result to a temp file; killed after `ms`. `result` is that file's content (undefined if none).
 */
export async function runBench(args: string[], ms: number): Promise<{ code: number | null; stdout: string; stderr: string; result: Json }> {
  const out = join(tempDir('herald-bench-smoke-'), 'result.json');
  const child = spawn(process.execPath, [projectFile('dist', 'bench', 'run.js'), ...args, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), ms);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(killer);
  const result: Json = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : undefined;
  rmSync(join(out, '..'), { recursive: true, force: true });
  return { code, stdout, stderr, result };
}
