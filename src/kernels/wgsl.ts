// Assembling a kernel module from its parts: a kernel file whose first line is
// `// @prepend a.wgsl|b.wgsl c.wgsl` is compiled after one alternative of each part (the op picks
// which, e.g. by device feature or precision; scripts/check-shaders.mjs compiles every combination).
// WGSL wants every `enable` directive before the first declaration, and parts may each bring one
// (`enable f16;`, `enable subgroups;`), so the directives are hoisted to the top, once each.

const DIRECTIVE = /^\s*enable\s+[\w\s,]+;\s*$/gm;

export function assembleWGSL(...parts: string[]): string {
  const directives = new Set<string>();
  const bodies = parts.map((p) =>
    p.replace(DIRECTIVE, (d) => {
      directives.add(d.trim());
      return '';
    }),
  );
  return [...directives, ...bodies].join('\n');
}

/** The optional device features a module's `enable` directives need. */
export function requiredFeatures(code: string): string[] {
  const out = new Set<string>();
  for (const d of code.match(DIRECTIVE) ?? []) {
    for (const ext of d.trim().slice('enable'.length, -1).split(',')) {
      const e = ext.trim();
      out.add(e === 'f16' ? 'shader-f16' : e);
    }
  }
  return [...out];
}
