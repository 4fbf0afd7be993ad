// Compile every shaders/*.wgsl (or the files named) with Dawn and print the compiler's messages.
// A file whose first line is `// @prepend a.wgsl|b.wgsl c.wgsl` is compiled the way its op
// assembles it: once per alternative of each part, parts first; part files are not compiled alone.
// Usage: node scripts/check-shaders.mjs [file.wgsl …]    Exit code 1 if any file has an error.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

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

/** The part lists a file asks for: [[alternatives of part 1], [alternatives of part 2], …]. */
const prepends = (f) => {
  const m = /^\/\/ @prepend (.+)$/m.exec(readFileSync(f, 'utf8').split('\n', 1)[0]);
  return m ? m[1].trim().split(/\s+/).map((p) => p.split('|').map((n) => join(dirname(f), n))) : [];
};
const parts = new Set(files.flatMap((f) => prepends(f).flat()).map((p) => basename(p)));
/** Every combination of one alternative per part. */
const combos = (lists) => lists.reduce((acc, alts) => acc.flatMap((c) => alts.map((a) => [...c, a])), [[]]);

let failed = false;
for (const f of files) {
  if (parts.has(basename(f))) continue;
  for (const combo of combos(prepends(f))) {
    const label = [...combo.map((p) => basename(p)), f].join(' + ');
    const code = [...combo, f].map((p) => readFileSync(p, 'utf8')).join('\n');
    const m = device.createShaderModule({ code });
    const info = await m.getCompilationInfo();
    for (const msg of info.messages) {
      if (msg.type === 'error') failed = true;
      console.log(`${label}:${msg.lineNum}:${msg.linePos} ${msg.type}: ${msg.message}`);
    }
    if (!info.messages.length) console.log(`${label}: ok`);
  }
}
device.destroy();
process.exit(failed ? 1 : 0);
