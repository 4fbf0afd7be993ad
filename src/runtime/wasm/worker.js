// A helper thread of the wasm thread pool (pool.ts), as plain JavaScript that runs unchanged as a
// Node worker_threads script (eval'd: CommonJS) and as a browser Web Worker (from a Blob URL).
// pool.ts imports this file as text. It instantiates the kernel module over the shared memory,
// then waits on the control words at address 0 of that memory for kernel runs:
//   [0] generation: bumped by the host for every run    [1] kernel index (-1: exit)
//   [2] argument block address                           [3] threads taking part (host included)
//   [4] helpers done with this run                       [5] set when a helper failed
//   [6] helpers that joined this run, or -1 once the host has closed it
// A helper joins a run only while it is open: one that wakes after the host has finished every
// task itself (the machine is busy, the helper was not scheduled in time) skips the run instead
// of making the host wait for it.
const port = typeof self === 'undefined' ? require('node:worker_threads').parentPort : self;
const GEN = 0, KERNEL = 1, ARGS = 2, THREADS = 3, DONE = 4, FAILED = 5, JOINED = 6;
// Polls of the generation word before sleeping: kernels often follow each other closely, and a
// futex wake-up costs tens of microseconds.
const SPIN = 20000;

/** Join the open run; false once the host closed it. */
function join(ctl) {
  for (let n = Atomics.load(ctl, JOINED); n >= 0; n = Atomics.load(ctl, JOINED)) {
    if (Atomics.compareExchange(ctl, JOINED, n, n + 1) === n) return true;
  }
  return false;
}

function serve(init) {
  const { module, memory, names, id, scratch } = init;
  const instance = new WebAssembly.Instance(module, {
    env: { memory, abort() { throw new Error('wasm kernel aborted'); } },
  });
  const kernels = names.map((n) => instance.exports[n]);
  const ctl = new Int32Array(memory.buffer, 0, 8);
  let seen = Atomics.load(ctl, GEN);
  port.postMessage({ ready: id });
  for (;;) {
    let gen = Atomics.load(ctl, GEN);
    for (let i = 0; gen === seen && i < SPIN; i++) gen = Atomics.load(ctl, GEN);
    if (gen === seen) {
      Atomics.wait(ctl, GEN, seen);
      continue;
    }
    seen = gen;
    if (Atomics.load(ctl, KERNEL) < 0) return;
    if (id >= Atomics.load(ctl, THREADS) || !join(ctl)) continue;
    // Joined: the kernel and arguments are those of the open run (written before it opened).
    const kernel = Atomics.load(ctl, KERNEL);
    seen = Atomics.load(ctl, GEN);
    try {
      kernels[kernel](Atomics.load(ctl, ARGS), scratch);
    } catch (e) {
      Atomics.store(ctl, FAILED, 1);
      port.postMessage({ error: String(e && e.stack || e) });
    }
    Atomics.add(ctl, DONE, 1);
    Atomics.notify(ctl, DONE);
  }
}

if (typeof self === 'undefined') port.once('message', serve);
else self.onmessage = (e) => serve(e.data);
