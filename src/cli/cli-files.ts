// What the training commands share about files: options a person got wrong (UsageError), a
// writable --out, a checkpoint file read before the GPU starts, and saving a checkpoint so that a
// trained model is never lost to a failed write.

import { accessSync, constants, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import * as wg from '../node';
import { UsageError } from './args';

export { UsageError };

/** --out names a file that can be written: its directory exists and is writable, and it is no directory. */
export function checkOut(out: string): void {
  const dir = dirname(resolve(out));
  if (isDirectory(out)) throw new UsageError(`--out ${out} is a directory; name a file in it, such as --out ${join(out, 'model.safetensors')}`);
  if (!isDirectory(dir)) throw new UsageError(`--out ${out}: the directory ${dir} does not exist (create it first)`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`--out ${out}: the directory ${dir} is not writable`);
  }
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A checkpoint file's bytes and progress, read before the GPU starts; every failure a UsageError naming `option` and the file. */
export function readCheckpointFile(option: string, file: string): { bytes: Uint8Array; progress: Record<string, unknown> } {
  if (isDirectory(file)) throw new UsageError(`${option} ${file} is a directory; name a checkpoint file`);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new UsageError(`${option} ${file}: ${fileError(e)}`);
  }
  try {
    return { bytes, progress: wg.io.readCheckpointProgress(bytes) };
  } catch (e) {
    throw new UsageError(`${option} ${file}: ${(e as Error).message}`);
  }
}

/** A file error in words. */
export function fileError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'a directory, not a file' : (e as Error).message;
}

/** Where saveModel wrote a checkpoint, and what failed on the way. */
export interface Saved {
  /** The file written (--out itself, or a rescue file), or null when nothing could be written. */
  path: string | null;
  /** "PATH: reason" for each place that failed, in order. */
  failures: string[];
}

/**
 * Write `bytes` to `out` (through `out.tmp`, renamed, so an interrupted save never leaves a broken
 * checkpoint). If that fails (full disk, the directory gone, `out` now a directory), the partial
 * .tmp is removed and the checkpoint goes beside `out` as NAME.rescued-TIME.EXT, or else into the
 * temp directory: the trained model is not lost.
 */
export function saveModel(out: string, bytes: Uint8Array): Saved {
  const ext = extname(out);
  const rescued = `${basename(out, ext)}.rescued-${new Date().toISOString().replace(/[:.]/g, '-')}${ext}`;
  const failures: string[] = [];
  for (const path of [out, join(dirname(out), rescued), join(tmpdir(), rescued)]) {
    try {
      writeAtomically(path, bytes);
      return { path, failures };
    } catch (e) {
      failures.push(`${path}: ${(e as Error).message}`);
    }
  }
  return { path: null, failures };
}

function writeAtomically(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
