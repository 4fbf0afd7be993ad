// Runs in the page: a matmul and a conv2d through webgrad's browser entry, on WebGPU.
import * as wg from '../../src/index';

interface Inputs {
  a: number[]; aShape: number[]; b: number[]; bShape: number[];
  x: number[]; xShape: number[]; w: number[]; wShape: number[];
}

async function runSmoke(inp: Inputs) {
  const info = await wg.init({ backend: 'webgpu' }); // the WebGPU path (the demo test covers the CPU's)
  const mm = wg.matmul(wg.tensor(inp.a, inp.aShape), wg.tensor(inp.b, inp.bShape));
  const conv = wg.conv2d(wg.tensor(inp.x, inp.xShape), wg.tensor(inp.w, inp.wShape), null, { padding: 1 });
  return {
    adapter: info.adapterInfo,
    matmul: { shape: mm.shape, data: Array.from(await mm.toArray()) },
    conv: { shape: conv.shape, data: Array.from(await conv.toArray()) },
  };
}

(window as unknown as { runSmoke: typeof runSmoke }).runSmoke = runSmoke;
document.title = 'ready';
