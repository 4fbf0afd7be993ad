// Compile every shaders/*.wgsl (or the files named) with Dawn and print the compiler's messages.
// Usage: node scripts/check-shaders.mjs [file.wgsl …]    Exit code 1 if any file has an error.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const { create } = await import('webgpu');
let gpu = create([]);
let adapter = await gpu.requestAdapter();
if (!adapter && existsSync('/usr/lib/chromium/vk_swiftshader_icd.json')) {
  process.env.VK_ICD_FILENAMES = '/usr/lib/chromium/vk_swiftshader_icd.json';
  gpu = create([]);
  adapter = await gpu.requestAdapter();
}
const features = ['shader-f16', 'subgroups'].filter((f) => adapter.features.has(f));
const device = await adapter.requestDevice({ requiredFeatures: features });
const files = process.argv.length > 2 ? process.argv.slice(2) : readdirSync('shaders').filter((f) => f.endsWith('.wgsl')).map((f) => join('shaders', f));
let failed = false;
for (const f of files) {
  const m = device.createShaderModule({ code: readFileSync(f, 'utf8') });
  const info = await m.getCompilationInfo();
  for (const msg of info.messages) {
    if (msg.type === 'error') failed = true;
    console.log(`${f}:${msg.lineNum}:${msg.linePos} ${msg.type}: ${msg.message}`);
  }
  if (!info.messages.length) console.log(`${f}: ok`);
}
device.destroy();
process.exit(failed ? 1 : 0);
