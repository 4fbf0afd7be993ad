// Node: automatic checkpoints in a file. A save writes a temporary file next to it and renames
// it over the old one, so a crash mid-save leaves the previous checkpoint whole.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { CheckpointStore, CheckpointStoreFactory } from './checkpoint-store';

export function fileCheckpointStore(path: string): CheckpointStore {
  const file = resolve(path);
  return {
    where: file,
    async save(bytes) {
      await mkdir(dirname(file), { recursive: true });
      const temporary = `${file}.${process.pid}.partial`;
      await writeFile(temporary, bytes);
      await rename(temporary, file);
    },
    async load() {
      try {
        return new Uint8Array(await readFile(file));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
  };
}

let defaults = 0;

/** Names are file paths; without one, <tmpdir>/webgrad/checkpoint-<pid>-<n>.safetensors. */
export const fileCheckpointStores: CheckpointStoreFactory = (name) =>
  fileCheckpointStore(name ?? join(tmpdir(), 'webgrad', `checkpoint-${process.pid}-${++defaults}.safetensors`));
