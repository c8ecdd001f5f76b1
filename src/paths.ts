import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Code runs both from src/ (tests, through tap's TypeScript loader) and from dist/src/ (npm start),
// so files at the top of the project are found by walking up to package.json, not by a fixed depth.
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

export const projectRoot = findRoot();
export const projectFile = (...parts: string[]): string => join(projectRoot, ...parts);
