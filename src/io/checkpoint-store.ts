// Where a Trainer keeps its automatic checkpoints: CPU-side storage that outlives the GPU device
// (after a device loss every GPU buffer is gone, so the checkpoint must not be one). A store holds
// one checkpoint, the latest: each save replaces the previous one.
//
// Defaults: IndexedDB in browsers (pages and Workers), a file in Node (src/node.ts registers it),
// memory where neither exists.

import { WebGradError } from '../runtime/errors';

export interface CheckpointStore {
  /** Where the checkpoint is kept, for messages: a file path, "IndexedDB webgrad/checkpoints/<key>", "memory". */
  readonly where: string;
  /** Keep `bytes` as the latest checkpoint. */
  save(bytes: Uint8Array): Promise<void>;
  /** The latest checkpoint, or null when none was saved. */
  load(): Promise<Uint8Array | null>;
}

/** A checkpoint kept in this JavaScript heap only (survives a device loss, not a reload). */
export function memoryCheckpointStore(): CheckpointStore {
  let latest: Uint8Array | null = null;
  return {
    where: 'memory',
    async save(bytes) {
      latest = bytes.slice();
    },
    async load() {
      return latest && latest.slice();
    },
  };
}

const IDB_DATABASE = 'webgrad';
const IDB_STORE = 'checkpoints';

/** A checkpoint kept in the browser's IndexedDB under `key` (database "webgrad", store "checkpoints"). */
export function indexedDBCheckpointStore(key: string): CheckpointStore {
  const where = `IndexedDB ${IDB_DATABASE}/${IDB_STORE}/${key}`;
  const run = async <T>(mode: IDBTransactionMode, request: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> => {
    const idb = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (!idb) throw new WebGradError(`checkpoint store: there is no IndexedDB here for ${where}`);
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = idb.open(IDB_DATABASE, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(IDB_STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    try {
      return await new Promise<T>((resolve, reject) => {
        const tx = db.transaction(IDB_STORE, mode);
        const req = request(tx.objectStore(IDB_STORE));
        tx.oncomplete = () => resolve(req.result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  };
  return {
    where,
    async save(bytes) {
      await run('readwrite', (s) => s.put(bytes, key));
    },
    async load() {
      const found = await run<unknown>('readonly', (s) => s.get(key));
      return found instanceof Uint8Array ? found : null;
    },
  };
}

/** The platform's store for a name (a key in browsers, a file path in Node); no name: a default one. */
export type CheckpointStoreFactory = (name: string | undefined) => CheckpointStore;

let storeFactory: CheckpointStoreFactory = (name) =>
  (globalThis as { indexedDB?: unknown }).indexedDB ? indexedDBCheckpointStore(name ?? defaultKey()) : memoryCheckpointStore();

let defaults = 0;
/** Default IndexedDB keys: "trainer", "trainer-2", … in the order trainers ask for one. */
function defaultKey(): string {
  return ++defaults === 1 ? 'trainer' : `trainer-${defaults}`;
}

/** @internal src/node.ts makes names file paths. */
export function setCheckpointStoreFactory(f: CheckpointStoreFactory): void {
  storeFactory = f;
}

/** The store `spec` names: a store as it is, a name for the platform's store, or the default. */
export function checkpointStore(spec?: CheckpointStore | string): CheckpointStore {
  return typeof spec === 'object' ? spec : storeFactory(spec);
}
