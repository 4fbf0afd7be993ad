// The latest model of each mode, kept in the browser's IndexedDB so that a reload continues where
// training stopped. One record per mode: the checkpoint file (model, optimizer, settings and
// progress) and the chart history (and, in the Text mode, the pasted text it trains on). IndexedDB works in Workers, so the training worker reads and writes it itself.
// Also the kernel tuning results: webgrad keeps them in localStorage, which Workers lack, so
// without this every visit would tune the kernels again.

import type { History } from './protocol';
import type { TextHistory } from './text-protocol';

const DB_NAME = 'webgrad-demo';
const STORE = 'models';
const KEY = 'latest';
const TEXT_KEY = 'text-latest';
const TUNING_KEY = 'kernel-tuning';

export interface StoredModel {
  /** When it was saved (ms since the epoch). */
  savedAt: number;
  /** A webgrad checkpoint (safetensors). */
  checkpoint: Uint8Array;
  history: History;
}

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Runs one request in its own transaction and resolves when the transaction has committed. */
async function withStore<T>(mode: IDBTransactionMode, request: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = request(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

export async function storeModel(model: StoredModel): Promise<void> {
  await withStore('readwrite', (s) => s.put(model, KEY));
}

export async function loadStoredModel(): Promise<StoredModel | null> {
  const found = await withStore<StoredModel | undefined>('readonly', (s) => s.get(KEY));
  return found ?? null;
}

export async function forgetStoredModel(): Promise<void> {
  await withStore('readwrite', (s) => s.delete(KEY));
}

export interface StoredTextModel {
  savedAt: number;
  /** A webgrad checkpoint of a GPT, with its tokenizer. */
  checkpoint: Uint8Array;
  history: TextHistory;
  /** The text it trains on when that was pasted (null: a shipped corpus, named in the checkpoint). */
  pasted: string | null;
}

export async function storeTextModel(model: StoredTextModel): Promise<void> {
  await withStore('readwrite', (s) => s.put(model, TEXT_KEY));
}

export async function loadStoredTextModel(): Promise<StoredTextModel | null> {
  const found = await withStore<StoredTextModel | undefined>('readonly', (s) => s.get(TEXT_KEY));
  return found ?? null;
}

export async function forgetStoredTextModel(): Promise<void> {
  await withStore('readwrite', (s) => s.delete(TEXT_KEY));
}

/** Kernel tuning winners by adapter (webgrad's TuningStore contents); {} when none are kept. */
export type TuningResults = Record<string, Record<string, string>>;

export async function loadTuning(): Promise<TuningResults> {
  const found = await withStore<unknown>('readonly', (s) => s.get(TUNING_KEY));
  return typeof found === 'object' && found !== null ? (found as TuningResults) : {};
}

export async function storeTuning(results: TuningResults): Promise<void> {
  await withStore('readwrite', (s) => s.put(results, TUNING_KEY));
}
