// Compile every shaders/*.wgsl (or the files named) with Dawn and print the compiler's messages.
// Every kernel file is compiled after shaders/prelude.wgsl, as src/kernels/kernel.ts assembles it.
// A file whose first line is `// @prepend a.wgsl|b.wgsl c.wgsl` is compiled the way its op
// assembles it (src/kernels/wgsl.ts): once per alternative of each part, parts first, `enable`
// directives hoisted to the top; part files are not compiled alone.
// A combination that needs a feature this adapter lacks (`enable f16;` without shader-f16, say)
// is compiled on Dawn's null backend instead, which has every feature and validates the WGSL but
// runs nothing; the output says so. (That happens in a child process without VK_ICD_FILENAMES:
// Dawn crashed otherwise.) If the null backend lacks the feature too, it is skipped, saying so.
// Usage: node scripts/check-shaders.mjs [file.wgsl …]    Exit code 1 if any file has an error.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const { create } = await import('webgpu');
const OPTIONAL = ['shader-f16', 'subgroups'];
const openDevice = async (a) => a.requestDevice({ requiredFeatures: OPTIONAL.filter((f) => a.features.has(f)) });

/** Compile `code` on `device`, print what the compiler says; true when there is no error. */
async function compile(device, label, code, note = '') {
  const module = device.createShaderModule({ code }); // held until its compilation info is back
  const info = await module.getCompilationInfo();
  for (const msg of info.messages) console.log(`${label}:${msg.lineNum}:${msg.linePos} ${msg.type}: ${msg.message}${note}`);
  if (!info.messages.length) console.log(`${label}: ok${note}`);
  return !info.messages.some((m) => m.type === 'error');
}

if (process.argv[2] === '--null-backend') {
  // The child: [label, code, missing features] on stdin, compiled on the null backend.
  const jobs = JSON.parse(readFileSync(0, 'utf8'));
  const instance = create(['backend=null']); // held: Dawn crashed when it was collected while in use
  const a = await instance.requestAdapter();
  const device = a && (await openDevice(a));
  let ok = true;
  for (const [label, code, missing] of jobs) {
    const needed = [...code.matchAll(/^enable\s+f16;/gm)].length ? ['shader-f16'] : [];
    if (!device || needed.some((f) => !device.features.has(f))) {
      console.log(`${label}: skipped (this adapter lacks ${missing.join(', ')}, and so does Dawn's null backend)`);
      continue;
    }
    ok = (await compile(device, label, code, ` (validated on Dawn's null backend: this adapter lacks ${missing.join(', ')})`)) && ok;
  }
  device?.destroy();
  process.exit(ok ? 0 : 1);
}

let gpu = create([]);
let adapter = await gpu.requestAdapter();
if (!adapter && existsSync('/usr/lib/chromium/vk_swiftshader_icd.json')) {
  process.env.VK_ICD_FILENAMES = '/usr/lib/chromium/vk_swiftshader_icd.json';
  gpu = create([]);
  adapter = await gpu.requestAdapter();
}
const device = await openDevice(adapter);
const files = process.argv.length > 2 ? process.argv.slice(2) : readdirSync('shaders').filter((f) => f.endsWith('.wgsl')).map((f) => join('shaders', f));

/** The part lists a file asks for: [[alternatives of part 1], [alternatives of part 2], …]. */
const prepends = (f) => {
  const m = /^\/\/ @prepend (.+)$/m.exec(readFileSync(f, 'utf8').split('\n', 1)[0]);
  return m ? m[1].trim().split(/\s+/).map((p) => p.split('|').map((n) => join(dirname(f), n))) : [];
};
const prelude = join('shaders', 'prelude.wgsl');
const parts = new Set([...files.flatMap((f) => prepends(f).flat()).map((p) => basename(p)), 'prelude.wgsl']);
/** Every combination of one alternative per part. */
const combos = (lists) => lists.reduce((acc, alts) => acc.flatMap((c) => alts.map((a) => [...c, a])), [[]]);

// The same assembly as src/kernels/wgsl.ts (a plain-Node script cannot import TypeScript).
const DIRECTIVE = /^\s*enable\s+[\w\s,]+;\s*$/gm;
const assemble = (texts) => {
  const directives = new Set();
  const bodies = texts.map((t) => t.replace(DIRECTIVE, (d) => (directives.add(d.trim()), '')));
  return [...directives, ...bodies].join('\n');
};
const needs = (code) =>
  (code.match(DIRECTIVE) ?? []).flatMap((d) => d.trim().slice(6, -1).split(',').map((e) => (e.trim() === 'f16' ? 'shader-f16' : e.trim())));

let failed = false;
const deferred = [];
for (const f of files) {
  if (parts.has(basename(f))) continue;
  for (const combo of combos(prepends(f))) {
    const label = [...combo.map((p) => basename(p)), f].join(' + ');
    const code = assemble([prelude, ...combo, f].map((p) => readFileSync(p, 'utf8')));
    const missing = needs(code).filter((feature) => !device.features.has(feature));
    if (missing.length) deferred.push([label, code, missing]);
    else if (!(await compile(device, label, code))) failed = true;
  }
}
if (deferred.length) {
  // The child must not see the Vulkan driver choice: with it, Dawn's null backend crashed.
  const env = { ...process.env };
  delete env.VK_ICD_FILENAMES;
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--null-backend'], { stdio: ['pipe', 'inherit', 'inherit'], env });
  child.stdin.end(JSON.stringify(deferred));
  const status = await new Promise((done) => child.on('exit', done));
  if (status !== 0) failed = true;
}
device.destroy();
process.exit(failed ? 1 : 0);
