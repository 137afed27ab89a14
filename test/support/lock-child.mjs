// One contender for the state-dir lock, as a separate process (test/unit/adapters/state-lock.test.ts forks several): the
// lock must exclude processes, which one event loop cannot show. Plain JavaScript importing lib/adapters/state.ts
// as the test bundled it (argv[2]), so a child starts in a fraction of the time a TypeScript loader would take.
//   lock-child.mjs <state.mjs> <dir> <name> contend <rounds> <log>   per round: lock, append "enter <pid>", yield, append "exit <pid>", release
//   lock-child.mjs <state.mjs> <dir> <name> hold <waitMs>            lock once; report {acquired} or {refused}; release on 'release'
// It reports {ready} once loaded and starts on the message 'go', so all contenders start together.

import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [module, dir, name, mode, arg, log] = process.argv.slice(2);
const { createStateStore } = await import(pathToFileURL(module).href);
// Real time, short polls: the test wants many hand-overs in little time.
const store = createStateStore(dir, { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 5))) });
const send = (m) => new Promise((r) => process.send(m, () => r()));
const message = (want) => new Promise((r) => process.on('message', (m) => m === want && r()));

async function main() {
  const go = message('go');
  await send({ ready: process.pid });
  await go;
  if (mode === 'contend') {
    for (let i = 0; i < Number(arg); i++) {
      const release = await store.lock(name, 90_000);
      appendFileSync(log, `enter ${process.pid}\n`);
      // Give the others every chance to barge in while we are inside.
      for (let j = 0; j < 3; j++) await new Promise((r) => setImmediate(r));
      appendFileSync(log, `exit ${process.pid}\n`);
      release();
    }
    return;
  }
  let release;
  try {
    release = await store.lock(name, Number(arg));
  } catch (err) {
    await send({ refused: err.message });
    return;
  }
  const released = message('release');
  await send({ acquired: process.pid });
  await released;
  release();
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
}
process.disconnect();
