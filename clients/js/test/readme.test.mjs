// Runs the README's Node example, as written, against the real binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startServer } from './server.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

export function readmeBlock(lang) {
  const text = readFileSync(`${root}/README.md`, 'utf8');
  const m = text.match(new RegExp('```' + lang + '\\n([\\s\\S]*?)```'));
  if (!m) throw new Error(`no ${lang} block in README.md`);
  return m[1];
}

test("the README's Node example runs and prints what it says", async () => {
  const server = await startServer();
  // Inside the package folder, so that `@activenow/client` resolves to this package.
  const file = `${root}/readme-example.tmp.mjs`;
  writeFileSync(file, readmeBlock('js'));
  try {
    const out = await new Promise((resolve, reject) =>
      execFile(process.execPath, [file], { env: { ...process.env, ACTIVENOW_URL: server.url }, timeout: 20000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    assert.match(out, /^joined demo as [0-9a-f-]{36}: 1 here$/m);
    assert.match(out, /^update seen: node-bot$/m);
  } finally {
    rmSync(file, { force: true });
    await server.stop();
  }
});
