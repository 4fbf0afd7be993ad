import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { gpu, Rng, wg } from '../helpers';
import {
  affineAboutCentre,
  augmentRanges,
  DataLoader,
  makeDataset,
  mnist,
  mnistSplit,
  randomAffine,
  subset,
  warpAffine,
  type CpuBatch,
  type Dataset,
} from '../../src/data';
import { decodeMnistFile, encodeMnistFile } from '../../src/data/mnist';
import { Generator } from '../../src/random';

/** The `mnist` package (devDependency): one entry per digit; get(i) gives pixels as round(byte/255, 3). */
const mnistPackage = createRequire(import.meta.url)('mnist') as { length: number; get(i: number): number[] }[];
const fileUrl = new URL('../../data/mnist.bin.gz', import.meta.url);
/** Every image of the committed file, in file order (read here without webgrad's loader). */
const all = decodeMnistFile(gunzipSync(readFileSync(fileUrl)));

let splits: Awaited<ReturnType<typeof mnist>>;
beforeAll(async () => {
  await gpu();
  splits = await mnist();
});

/** Package (digit, index within the digit) of image g of the file's order. */
function packageIndex(g: number): [number, number] {
  let d = 0;
  while (g >= mnistPackage[d]!.length) g -= mnistPackage[d++]!.length;
  return [d, g];
}

function image(d: Dataset, i: number): Uint8Array {
  const n = d.imageShape[0] * d.imageShape[1] * d.imageShape[2];
  return d.images.subarray(i * n, (i + 1) * n);
}

/** A dataset of `n` one-channel h×w images whose first pixel is the sample's index (n ≤ 256). */
function indexed(n: number, h = 3, w = 3): Dataset {
  const images = new Uint8Array(n * h * w);
  for (let i = 0; i < n; i++) images[i * h * w] = i;
  return makeDataset({ images, labels: Uint8Array.from({ length: n }, (_, i) => i % 10), imageShape: [1, h, w], numClasses: 10 });
}

/** The sample indices of an epoch of CPU batches of `indexed()` data. */
function epochOrder(batches: Iterable<CpuBatch>): number[] {
  const order: number[] = [];
  for (const b of batches) {
    const pixels = b.shape[1] * b.shape[2] * b.shape[3];
    for (let k = 0; k < b.size; k++) order.push(Math.round(b.x[k * pixels]! * 255));
  }
  return order;
}

describe('the MNIST file', () => {
  it('holds the 10,000 digits of the mnist package, byte for byte', () => {
    expect(all.size).toBe(10_000);
    expect(all.imageShape).toEqual([1, 28, 28]);
    const rng = new Rng();
    const checks = [0, 9_999, ...Array.from({ length: 20 }, () => rng.int(10_000))];
    for (const g of checks) {
      const [digit, i] = packageIndex(g);
      expect(all.labels[g], `label of image ${g} (seed ${rng.seed})`).toBe(digit);
      const fromPackage = mnistPackage[digit]!.get(i);
      const ours = Array.from(image(all, g), (b) => Math.round((b / 255) * 1000) / 1000);
      expect(ours, `image ${g} = digit ${digit} #${i} (seed ${rng.seed})`).toEqual(fromPackage);
    }
  });

  it('rejects a file that is not one, or is cut short, naming the problem', () => {
    const raw = encodeMnistFile({ images: new Uint8Array(2 * 4), labels: Uint8Array.of(3, 7), rows: 2, cols: 2 });
    expect(decodeMnistFile(raw).size).toBe(2);
    expect(() => decodeMnistFile(raw.subarray(0, raw.length - 1))).toThrow(/25 bytes.*2 images of 2×2 \(26 bytes\).*truncated/);
    expect(() => decodeMnistFile(Uint8Array.of(1, 2, 3))).toThrow(/does not start with "WGMNIST1"/);
    const badLabel = raw.slice();
    badLabel[16] = 10;
    expect(() => decodeMnistFile(badLabel)).toThrow(/label 10 of sample 0 is not below numClasses \(10\)/);
  });
});

describe('wg.data.mnist()', () => {
  it('splits 8,000 / 2,000, disjoint and covering the file', () => {
    const { train, test } = splits;
    expect([train.size, test.size]).toEqual([8_000, 2_000]);
    expect([train.images.length, test.images.length]).toEqual([8_000 * 784, 2_000 * 784]);
    expect(train.imageShape).toEqual([1, 28, 28]);
    expect(train.numClasses).toBe(10);
    const { train: trainIdx, test: testIdx } = mnistSplit(10_000);
    const seen = new Uint8Array(10_000);
    for (const g of [...trainIdx, ...testIdx]) seen[g]!++;
    expect(seen.every((c) => c === 1)).toBe(true);
    expect(testIdx.every((g) => g % 5 === 4)).toBe(true);
    for (const n of [4, 9, 14]) {
      const s = mnistSplit(n);
      expect([...s.train, ...s.test].sort((a, b) => a - b), `split of ${n}`).toEqual(Array.from({ length: n }, (_, i) => i));
    }
  });

  it('gives the images and labels of the file at the split indices', () => {
    const { train: trainIdx, test: testIdx } = mnistSplit(10_000);
    const rng = new Rng();
    for (const [set, idx] of [[splits.train, trainIdx], [splits.test, testIdx]] as const) {
      for (let c = 0; c < 20; c++) {
        const k = rng.int(set.size);
        expect(set.labels[k], `seed ${rng.seed}`).toBe(all.labels[idx[k]!]);
        expect(Buffer.from(image(set, k)).equals(Buffer.from(image(all, idx[k]!))), `sample ${k}, seed ${rng.seed}`).toBe(true);
      }
    }
  });

  it('has every digit in both splits, about 20% of each in test, and mixes digits from the start', () => {
    const counts = (d: Dataset): number[] => {
      const c = new Array<number>(10).fill(0);
      for (const l of d.labels) c[l]!++;
      return c;
    };
    const train = counts(splits.train);
    const test = counts(splits.test);
    for (let digit = 0; digit < 10; digit++) {
      const total = train[digit]! + test[digit]!;
      expect(test[digit], `digit ${digit}`).toBeGreaterThanOrEqual(Math.floor(total / 5) - 1);
      expect(test[digit], `digit ${digit}`).toBeLessThanOrEqual(Math.ceil(total / 5) + 1);
    }
    expect(new Set(splits.train.labels.subarray(0, 100)).size).toBe(10);
    expect(new Set(splits.test.labels.subarray(0, 100)).size).toBe(10);
  });

  it('is the same on every call, and from bytes (gzipped or not) or a URL', async () => {
    const gz = new Uint8Array(readFileSync(fileUrl));
    for (const again of [await mnist(), await mnist({ bytes: gz }), await mnist({ bytes: gunzipSync(gz) }), await mnist({ url: fileUrl })]) {
      expect(Buffer.from(again.test.images).equals(Buffer.from(splits.test.images))).toBe(true);
      expect(Buffer.from(again.train.labels).equals(Buffer.from(splits.train.labels))).toBe(true);
    }
  });

  it('names the file it cannot read', async () => {
    await expect(mnist({ url: new URL('../../data/missing.bin.gz', import.meta.url) })).rejects.toThrow(/cannot read .*missing\.bin\.gz/);
  });
});

describe('DataLoader', () => {
  it('visits every sample exactly once per epoch, with a short last batch', () => {
    const loader = new DataLoader(indexed(37), { batchSize: 8, shuffle: true, seed: new Rng().seed });
    expect(loader.length).toBe(5);
    for (let epoch = 0; epoch < 3; epoch++) {
      const sizes = [...loader.cpuBatches()].map((b) => b.size);
      expect(sizes).toEqual([8, 8, 8, 8, 5]);
    }
    const order = epochOrder(loader.cpuBatches());
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: 37 }, (_, i) => i));
  });

  it('dropLast leaves out the short batch', () => {
    const loader = new DataLoader(indexed(37), { batchSize: 8, dropLast: true });
    expect(loader.length).toBe(4);
    expect(epochOrder(loader.cpuBatches())).toEqual(Array.from({ length: 32 }, (_, i) => i));
    expect(new DataLoader(indexed(32), { batchSize: 8, dropLast: true }).length).toBe(4);
    expect(new DataLoader(indexed(7), { batchSize: 8, dropLast: true }).length).toBe(0);
  });

  it('without shuffle, keeps dataset order every epoch', () => {
    const loader = new DataLoader(indexed(20), { batchSize: 6 });
    const identity = Array.from({ length: 20 }, (_, i) => i);
    expect(epochOrder(loader.cpuBatches())).toEqual(identity);
    expect(epochOrder(loader.cpuBatches())).toEqual(identity);
  });

  it('shuffles deterministically per seed, differently each epoch, and resumes at any epoch', () => {
    const seed = new Rng().seed;
    const a = new DataLoader(indexed(50), { batchSize: 16, shuffle: true, seed });
    const b = new DataLoader(indexed(50), { batchSize: 16, shuffle: true, seed });
    const a0 = epochOrder(a.cpuBatches());
    const a1 = epochOrder(a.cpuBatches());
    expect(epochOrder(b.cpuBatches()), `seed ${seed}`).toEqual(a0);
    expect(epochOrder(b.cpuBatches()), `seed ${seed}`).toEqual(a1);
    expect(a1, `seed ${seed}`).not.toEqual(a0);
    expect(a0, `seed ${seed}`).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    const other = new DataLoader(indexed(50), { batchSize: 16, shuffle: true, seed: seed + 1 });
    expect(epochOrder(other.cpuBatches()), `seed ${seed}`).not.toEqual(a0);
    const resumed = new DataLoader(indexed(50), { batchSize: 16, shuffle: true, seed });
    resumed.epoch = 1;
    expect(epochOrder(resumed.cpuBatches())).toEqual(a1);
  });

  it('without a seed, follows wg.manualSeed', () => {
    wg.manualSeed(1234);
    const a = epochOrder(new DataLoader(indexed(30), { batchSize: 30, shuffle: true }).cpuBatches());
    wg.manualSeed(1234);
    const b = epochOrder(new DataLoader(indexed(30), { batchSize: 30, shuffle: true }).cpuBatches());
    expect(b).toEqual(a);
  });

  it('gives GPU batches: x float32 [B,1,28,28] = pixels/255, y int32 [B] = labels', async () => {
    const data = subset(splits.test, Array.from({ length: 10 }, (_, i) => i));
    const loader = new DataLoader(data, { batchSize: 4 });
    const before = wg.memory().liveTensors;
    const seen: number[] = [];
    for (const batch of loader) {
      expect(batch.x.shape).toEqual([batch.size, 1, 28, 28]);
      expect(batch.x.dtype).toBe('float32');
      expect(batch.y.shape).toEqual([batch.size]);
      expect(batch.y.dtype).toBe('int32');
      const x = await batch.x.toArray();
      const start = seen.length;
      const expected = Float32Array.from(data.images.subarray(start * 784, (start + batch.size) * 784), (v) => v / 255);
      expect(Array.from(x)).toEqual(Array.from(expected));
      seen.push(...(await batch.y.toArray()));
      batch.dispose();
    }
    expect(seen).toEqual(Array.from(data.labels));
    expect(wg.memory().liveTensors).toBe(before);
  });

  it('refuses a batch size that is not a positive integer', () => {
    expect(() => new DataLoader(indexed(4), { batchSize: 0 })).toThrow(/batchSize must be a positive integer, got 0/);
    expect(() => new DataLoader(indexed(4), { batchSize: 2.5 })).toThrow(wg.WebGradError);
  });
});

describe('augmentation', () => {
  function randomImage(rng: Rng, h: number, w: number): Uint8Array {
    return Uint8Array.from({ length: h * w }, () => rng.int(256));
  }
  const warp = (src: Uint8Array, w: number, h: number, p: Parameters<typeof affineAboutCentre>[0]): Float32Array =>
    warpAffine(src, w, h, affineAboutCentre(p, w, h), new Float32Array(w * h).fill(NaN));

  it('the identity transform leaves the image unchanged', () => {
    const rng = new Rng();
    const src = randomImage(rng, 28, 28);
    expect(Array.from(warp(src, 28, 28, {}))).toEqual(Array.from(src));
    expect(Array.from(warp(src, 28, 28, { rotation: 0, scale: 1, shiftX: 0, shiftY: 0 }))).toEqual(Array.from(src));
  });

  it('a 1-pixel shift moves every pixel by one, filling with background', () => {
    const rng = new Rng();
    const [h, w] = [5, 7];
    const src = randomImage(rng, h, w);
    const right = warp(src, w, h, { shiftX: 1 });
    const down = warp(src, w, h, { shiftY: 1 });
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        expect(right[y * w + x], `right (${x}, ${y}), seed ${rng.seed}`).toBe(x === 0 ? 0 : src[y * w + x - 1]);
        expect(down[y * w + x], `down (${x}, ${y}), seed ${rng.seed}`).toBe(y === 0 ? 0 : src[(y - 1) * w + x]);
      }
    }
  });

  it('rotates clockwise on screen and scales about the centre', () => {
    const rng = new Rng();
    const src = randomImage(rng, 5, 5);
    const at = (img: ArrayLike<number>, x: number, y: number): number => img[y * 5 + x]!;
    const turned = warp(src, 5, 5, { rotation: 90 });
    const doubled = warp(src, 5, 5, { scale: 2 });
    // Right of centre goes below it; the centre stays; each offset d from the centre moves to 2d.
    expect(at(turned, 2, 3)).toBeCloseTo(at(src, 3, 2), 3);
    expect(at(turned, 1, 2)).toBeCloseTo(at(src, 2, 3), 3);
    expect(at(doubled, 2, 2)).toBeCloseTo(at(src, 2, 2), 3);
    expect(at(doubled, 4, 0)).toBeCloseTo(at(src, 3, 1), 3);
    expect(at(doubled, 3, 2)).toBeCloseTo((at(src, 2, 2) + at(src, 3, 2)) / 2, 3); // bilinear half-way
  });

  it('draws parameters within the ranges, spread across them', () => {
    const gen = new Generator(new Rng().seed);
    const ranges = augmentRanges({});
    const draws = Array.from({ length: 2000 }, () => randomAffine(gen, ranges));
    const span = (k: 'rotation' | 'scale' | 'shiftX' | 'shiftY'): [number, number] => [
      Math.min(...draws.map((d) => d[k])),
      Math.max(...draws.map((d) => d[k])),
    ];
    const [rLo, rHi] = span('rotation');
    const [sLo, sHi] = span('scale');
    const [xLo, xHi] = span('shiftX');
    expect(rLo).toBeGreaterThanOrEqual(-10);
    expect(rLo).toBeLessThan(-9.5);
    expect(rHi).toBeLessThanOrEqual(10);
    expect(rHi).toBeGreaterThan(9.5);
    expect(sLo).toBeGreaterThanOrEqual(0.9);
    expect(sHi).toBeLessThanOrEqual(1.1);
    expect(sHi - sLo).toBeGreaterThan(0.19);
    expect(xLo).toBeGreaterThanOrEqual(-2);
    expect(xHi).toBeLessThanOrEqual(2);
    expect(xHi - xLo).toBeGreaterThan(3.9);
    expect(() => augmentRanges({ scale: [0, 1] })).toThrow(/0 < scale\[0\] ≤ scale\[1\]; .*scale \[0, 1\]/);
  });

  it('resumes mid-epoch: batches from k on are those of a full pass, augmentation included', () => {
    const data = subset(splits.train, Array.from({ length: 40 }, (_, i) => i));
    const seed = new Rng().seed;
    const make = () => new DataLoader(data, { batchSize: 12, shuffle: true, augment: true, seed });
    const full = make();
    full.epoch = 2;
    const all = [...full.cpuBatches()];
    const resumed = make();
    resumed.epoch = 2;
    const rest = [...resumed.cpuBatches(2)];
    expect(rest.map((b) => b.size)).toEqual([12, 4]);
    for (let i = 0; i < rest.length; i++) {
      expect(Array.from(rest[i]!.y), `seed ${seed}`).toEqual(Array.from(all[i + 2]!.y));
      expect(Array.from(rest[i]!.x), `seed ${seed}`).toEqual(Array.from(all[i + 2]!.x));
    }
    expect(resumed.epoch).toBe(3);
  });

  it('in the loader: deterministic per seed, within [0, 1], and changes the images', () => {
    const data = subset(splits.train, Array.from({ length: 64 }, (_, i) => i));
    const seed = new Rng().seed;
    const batch = (opts: { augment: boolean; seed?: number }): CpuBatch =>
      new DataLoader(data, { batchSize: 64, ...opts }).cpuBatches().next().value!;
    const plain = batch({ augment: false });
    const a = batch({ augment: true, seed });
    const b = batch({ augment: true, seed });
    const c = batch({ augment: true, seed: seed + 1 });
    expect(Array.from(b.x), `seed ${seed}`).toEqual(Array.from(a.x));
    expect(Array.from(b.y)).toEqual(Array.from(plain.y));
    expect(Array.from(c.x), `seed ${seed}`).not.toEqual(Array.from(a.x));
    expect(a.x.every((v) => v >= 0 && v <= 1), `seed ${seed}`).toBe(true);
    let changed = 0;
    for (let k = 0; k < 64; k++) {
      let diff = 0;
      for (let j = k * 784; j < (k + 1) * 784; j++) diff += Math.abs(a.x[j]! - plain.x[j]!);
      if (diff > 1) changed++;
    }
    expect(changed, `seed ${seed}`).toBeGreaterThanOrEqual(60);
    // The digit stays on the canvas: ink is roughly preserved.
    const ink = (x: Float32Array): number => x.reduce((s, v) => s + v, 0);
    expect(ink(a.x) / ink(plain.x)).toBeGreaterThan(0.8);
    expect(ink(a.x) / ink(plain.x)).toBeLessThan(1.25);
  });
});
