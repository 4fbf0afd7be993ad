// A helper thread of the wasm thread pool (pool.ts), as plain JavaScript that runs unchanged as a
// Node worker_threads script (eval'd: CommonJS) and as a browser Web Worker (from a Blob URL).
// pool.ts imports this file as text. It instantiates the kernel module over the shared memory,
// then waits on the control words at address 0 of that memory for kernel runs:
//   [0] generation: bumped by the host for every run    [1] kernel index (-1: exit)
//   [2] argument block address                           [3] threads taking part (host included)
//   [4] helpers done with this run                       [5] set when a helper failed
const port = typeof self === 'undefined' ? require('node:worker_threads').parentPort : self;
const GEN = 0, KERNEL = 1, ARGS = 2, THREADS = 3, DONE = 4, FAILED = 5;
// Polls of the generation word before sleeping: kernels often follow each other closely, and a
// futex wake-up costs tens of microseconds.
const SPIN = 20000;

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
    const kernel = Atomics.load(ctl, KERNEL);
    if (kernel < 0) return;
    if (id >= Atomics.load(ctl, THREADS)) continue;
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
