// Compile every shaders/*.wgsl (or the files named) with Dawn and print the compiler's messages.
// A file whose first line is `// @prepend a.wgsl|b.wgsl c.wgsl` is compiled the way its op
// assembles it (src/runtime/wgsl.ts): once per alternative of each part, parts first, `enable`
// directives hoisted to the top; part files are not compiled alone.
// A combination that needs a feature this adapter lacks (`enable f16;` without shader-f16, say)
// is compiled on Dawn's null backend instead, which has every feature and validates the WGSL but
// runs nothing; the output says so. If that is unavailable too, the combination is skipped, saying so.
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
const OPTIONAL = ['shader-f16', 'subgroups'];
const openDevice = async (a) => a.requestDevice({ requiredFeatures: OPTIONAL.filter((f) => a.features.has(f)) });
const device = await openDevice(adapter);
/** Dawn's null backend, opened on first need. */
let nullDevice;
const validator = async () => {
  if (nullDevice === undefined) {
    const a = await create(['backend=null']).requestAdapter();
    nullDevice = a ? await openDevice(a) : null;
  }
  return nullDevice;
};
const files = process.argv.length > 2 ? process.argv.slice(2) : readdirSync('shaders').filter((f) => f.endsWith('.wgsl')).map((f) => join('shaders', f));

/** The part lists a file asks for: [[alternatives of part 1], [alternatives of part 2], …]. */
const prepends = (f) => {
  const m = /^\/\/ @prepend (.+)$/m.exec(readFileSync(f, 'utf8').split('\n', 1)[0]);
  return m ? m[1].trim().split(/\s+/).map((p) => p.split('|').map((n) => join(dirname(f), n))) : [];
};
const parts = new Set(files.flatMap((f) => prepends(f).flat()).map((p) => basename(p)));
/** Every combination of one alternative per part. */
const combos = (lists) => lists.reduce((acc, alts) => acc.flatMap((c) => alts.map((a) => [...c, a])), [[]]);

// The same assembly as src/runtime/wgsl.ts (a plain-Node script cannot import TypeScript).
const DIRECTIVE = /^\s*enable\s+[\w\s,]+;\s*$/gm;
const assemble = (texts) => {
  const directives = new Set();
  const bodies = texts.map((t) => t.replace(DIRECTIVE, (d) => (directives.add(d.trim()), '')));
  return [...directives, ...bodies].join('\n');
};
const needs = (code) =>
  (code.match(DIRECTIVE) ?? []).flatMap((d) => d.trim().slice(6, -1).split(',').map((e) => (e.trim() === 'f16' ? 'shader-f16' : e.trim())));

let failed = false;
for (const f of files) {
  if (parts.has(basename(f))) continue;
  for (const combo of combos(prepends(f))) {
    const label = [...combo.map((p) => basename(p)), f].join(' + ');
    const code = assemble([...combo, f].map((p) => readFileSync(p, 'utf8')));
    const missing = needs(code).filter((feature) => !device.features.has(feature));
    let target = device;
    let note = '';
    if (missing.length) {
      target = await validator();
      if (!target || needs(code).some((feature) => !target.features.has(feature))) {
        console.log(`${label}: skipped (this adapter lacks ${missing.join(', ')}, and Dawn's null backend is unavailable)`);
        continue;
      }
      note = ` (validated on Dawn's null backend: this adapter lacks ${missing.join(', ')})`;
    }
    const m = target.createShaderModule({ code });
    const info = await m.getCompilationInfo();
    for (const msg of info.messages) {
      if (msg.type === 'error') failed = true;
      console.log(`${label}:${msg.lineNum}:${msg.linePos} ${msg.type}: ${msg.message}${note}`);
    }
    if (!info.messages.length) console.log(`${label}: ok${note}`);
  }
}
device.destroy();
nullDevice?.destroy();
process.exit(failed ? 1 : 0);
