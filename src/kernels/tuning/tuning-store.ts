// Where autotuning results persist between runs: localStorage in browsers, a JSON file in Node
// (src/node.ts installs that one). Results are keyed by adapter, so a tuned choice is only ever
// reused on the GPU it was measured on.

export interface TuningStore {
  load(): Record<string, Record<string, string>>;
  save(all: Record<string, Record<string, string>>): void;
}

const LOCAL_STORAGE_KEY = 'webgrad.tuning.v1';

/** Browsers (pages and workers without localStorage simply keep results for the session). */
const browserStore: TuningStore = {
  load() {
    try {
      const raw = (globalThis as { localStorage?: Storage }).localStorage?.getItem(LOCAL_STORAGE_KEY);
      return raw ? (JSON.parse(raw) as Record<string, Record<string, string>>) : {};
    } catch {
      return {};
    }
  },
  save(all) {
    try {
      (globalThis as { localStorage?: Storage }).localStorage?.setItem(LOCAL_STORAGE_KEY, JSON.stringify(all));
    } catch {
      // Storage full or unavailable: tuning still works for this session.
    }
  },
};

let store: TuningStore = browserStore;
let enabledByDefault = true;

/** Install the store (Node: a file) and whether tuning is on when init() does not say. */
export function setTuningStore(s: TuningStore, defaultEnabled = true): void {
  store = s;
  enabledByDefault = defaultEnabled;
}

export function tuningEnabledByDefault(): boolean {
  return enabledByDefault;
}

export function tuningStore(): TuningStore {
  return store;
}
