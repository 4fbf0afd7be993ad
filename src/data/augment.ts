// Random affine augmentation of small images on the CPU: rotation, scaling and shift about the
// image centre, composed as gl-matrix 3×3 matrices, inverted, and sampled with bilinear
// interpolation (outside the source image reads as 0, the background).
//
// Coordinates: x is the column, y the row, pixel centres at integers; the centre of an h×w image
// is ((w − 1)/2, (h − 1)/2). A transform maps a source point to where it lands in the output, so
// the output pixel p takes the source value at M⁻¹·p.

import { mat3, vec2 } from 'gl-matrix';
import { WebGradError } from '../runtime/errors';
import type { Generator } from '../random';

export interface AffineParams {
  /** Rotation in degrees (positive turns clockwise on screen, since y points down). */
  rotation?: number;
  /** Scale factor (1 = unchanged; > 1 enlarges). */
  scale?: number;
  /** Shift right, in pixels. */
  shiftX?: number;
  /** Shift down, in pixels. */
  shiftY?: number;
}

export interface AugmentOptions {
  /** Largest rotation either way, in degrees (default 10). */
  maxRotation?: number;
  /** Largest shift in x and in y, in pixels (default 2). */
  maxShift?: number;
  /** Range of the scale factor (default [0.9, 1.1]). */
  scale?: readonly [number, number];
}

/** The matrix of `p` applied about the centre of a `width`×`height` image: T(c + shift)·R·S·T(−c). */
export function affineAboutCentre(p: AffineParams, width: number, height: number): mat3 {
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  const scale = p.scale ?? 1;
  const m = mat3.create();
  mat3.fromTranslation(m, [cx + (p.shiftX ?? 0), cy + (p.shiftY ?? 0)]);
  mat3.rotate(m, m, ((p.rotation ?? 0) * Math.PI) / 180);
  mat3.scale(m, m, [scale, scale]);
  mat3.translate(m, m, [-cx, -cy]);
  return m;
}

/** `opts` with defaults filled in, checked (the message names the bad range). */
export function augmentRanges(opts: AugmentOptions = {}): Required<AugmentOptions> {
  const maxRotation = opts.maxRotation ?? 10;
  const maxShift = opts.maxShift ?? 2;
  const scale = opts.scale ?? [0.9, 1.1];
  if (!(maxRotation >= 0 && maxShift >= 0 && scale[0] > 0 && scale[1] >= scale[0])) {
    throw new WebGradError(
      `augment: need maxRotation ≥ 0, maxShift ≥ 0 and 0 < scale[0] ≤ scale[1]; got maxRotation ${maxRotation}, ` +
        `maxShift ${maxShift}, scale [${scale[0]}, ${scale[1]}]`,
    );
  }
  return { maxRotation, maxShift, scale };
}

/** Uniform random parameters within `ranges`, drawn from `gen`. */
export function randomAffine(gen: Generator, ranges: Required<AugmentOptions>): Required<AffineParams> {
  const between = (a: number, b: number): number => a + (b - a) * gen.uniform();
  const { maxRotation, maxShift, scale } = ranges;
  return {
    rotation: between(-maxRotation, maxRotation),
    scale: between(scale[0], scale[1]),
    shiftX: between(-maxShift, maxShift),
    shiftY: between(-maxShift, maxShift),
  };
}

/**
 * Writes `src` (an h×w image, one channel) transformed by `transform` into `out`, each value
 * multiplied by `gain` (e.g. 1/255 to turn bytes into [0, 1]).
 */
export function warpAffine(
  src: ArrayLike<number>,
  width: number,
  height: number,
  transform: mat3,
  out: Float32Array,
  gain = 1,
): Float32Array {
  const inverse = mat3.invert(mat3.create(), transform);
  if (!inverse) throw new WebGradError('warpAffine: the transform is singular (a scale of 0?) and cannot be inverted');
  const at = (x: number, y: number): number => (x >= 0 && x < width && y >= 0 && y < height ? src[y * width + x]! : 0);
  const p = vec2.create();
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      vec2.transformMat3(p, vec2.set(p, x, y), inverse);
      const x0 = Math.floor(p[0]);
      const y0 = Math.floor(p[1]);
      const fx = p[0] - x0;
      const fy = p[1] - y0;
      const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
      const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
      out[y * width + x] = gain * (top * (1 - fy) + bottom * fy);
    }
  }
  return out;
}
