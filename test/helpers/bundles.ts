import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The files of an ES module bundle in `dir` (esbuild's output, split at its dynamic imports)
 * that importing `entry` loads before any of its code runs: the entry, its static imports
 * (`import … from "./chunk.mjs"`, `import "./chunk.mjs"`, `export … from`), and theirs, minified
 * or not. A dynamic `import("./chunk.mjs")` is not followed: that chunk loads when it runs.
 */
export function staticallyLoaded(dir: string, entry: string): string[] {
  const loaded = new Set<string>();
  const queue = [entry];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (loaded.has(file)) continue;
    loaded.add(file);
    const code = readFileSync(join(dir, file), 'utf8');
    for (const m of code.matchAll(/(?:\bfrom|\bimport)\s*"\.\/([^"]+\.mjs)"/g))
      queue.push(m[1] as string);
  }
  return [...loaded];
}
