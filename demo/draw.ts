// The drawing pad, and turning a drawing into the kind of image the model was trained on.
//
// MNIST digits were made this way: the digit's bounding box scaled (aspect kept) to fit 20×20
// pixels with anti-aliasing, then placed in a 28×28 image so that its centre of mass sits at the
// centre (pixel (14, 14) counting from 0: the mean over this repository's digits is 14.00, 14.00).
// A drawing gets the same treatment, otherwise a digit drawn small or off-centre reads as noise.

export const MNIST_SIZE = 28;
const FIT_SIZE = 20;
const CENTRE = 14;
/** Ink below this grey level does not count towards the bounding box (anti-aliased fringes). */
const INK_THRESHOLD = 0.1;

/** A canvas to draw on with a mouse, pen or finger: white ink on black, like the digits. */
export class DrawingPad {
  private readonly ctx: CanvasRenderingContext2D;
  private last: { x: number; y: number } | null = null;
  private changeScheduled = false;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    /** Called (at most once a frame) with the drawing as a 28×28 input, or null when it is empty. */
    private readonly onChange: (pixels: Float32Array | null) => void,
  ) {
    this.ctx = canvas.getContext('2d', { willReadFrequently: true })!;
    // Thick enough that a digit filling the pad has MNIST's stroke width after shrinking to 20 px.
    this.ctx.lineWidth = canvas.width / 12;
    this.ctx.lineCap = 'round';
    this.ctx.lineJoin = 'round';
    this.ctx.strokeStyle = '#fff';
    this.ctx.fillStyle = '#fff';
    this.fillBackground();
    canvas.addEventListener('pointerdown', (e) => {
      canvas.setPointerCapture(e.pointerId);
      this.last = this.toCanvas(e);
      this.dot(this.last);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!this.last) return;
      const p = this.toCanvas(e);
      this.ctx.beginPath();
      this.ctx.moveTo(this.last.x, this.last.y);
      this.ctx.lineTo(p.x, p.y);
      this.ctx.stroke();
      this.last = p;
      this.changed();
    });
    const end = (): void => {
      this.last = null;
    };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
  }

  clear(): void {
    this.fillBackground();
    this.onChange(null);
  }

  /** The drawing as a 28×28 MNIST-style input, or null when nothing is drawn. */
  pixels(): Float32Array | null {
    const { width, height } = this.canvas;
    const rgba = this.ctx.getImageData(0, 0, width, height).data;
    const ink = new Float32Array(width * height);
    for (let i = 0; i < ink.length; i++) ink[i] = rgba[i * 4]! / 255;
    return mnistInput(ink, width, height);
  }

  private fillBackground(): void {
    this.ctx.save();
    this.ctx.fillStyle = '#000';
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.ctx.restore();
  }

  private dot(p: { x: number; y: number }): void {
    this.ctx.beginPath();
    this.ctx.arc(p.x, p.y, this.ctx.lineWidth / 2, 0, 2 * Math.PI);
    this.ctx.fill();
    this.changed();
  }

  /** Pointer position in canvas pixels (the canvas may be shown smaller, e.g. on a phone). */
  private toCanvas(e: PointerEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) * this.canvas.width) / r.width, y: ((e.clientY - r.top) * this.canvas.height) / r.height };
  }

  private changed(): void {
    if (this.changeScheduled) return;
    this.changeScheduled = true;
    requestAnimationFrame(() => {
      this.changeScheduled = false;
      this.onChange(this.pixels());
    });
  }
}

/**
 * `ink` (a width×height image, grey levels in [0, 1]) as a 28×28 MNIST-style image: the bounding
 * box of the ink fitted into 20×20 (aspect kept, area-averaged), then shifted so that its centre
 * of mass is at (14, 14). Null when there is no ink.
 */
export function mnistInput(ink: Float32Array, width: number, height: number): Float32Array | null {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink[y * width + x]! >= INK_THRESHOLD) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return null;
  const boxW = x1 - x0 + 1;
  const boxH = y1 - y0 + 1;
  const scale = FIT_SIZE / Math.max(boxW, boxH);
  const fitW = Math.max(1, Math.round(boxW * scale));
  const fitH = Math.max(1, Math.round(boxH * scale));
  const box = new Float32Array(boxW * boxH);
  for (let y = 0; y < boxH; y++) box.set(ink.subarray((y0 + y) * width + x0, (y0 + y) * width + x0 + boxW), y * boxW);
  const fitted = resizeByArea(box, boxW, boxH, fitW, fitH);

  let mass = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < fitH; y++) {
    for (let x = 0; x < fitW; x++) {
      const v = fitted[y * fitW + x]!;
      mass += v;
      mx += v * x;
      my += v * y;
    }
  }
  return shiftInto(fitted, fitW, fitH, CENTRE - mx / mass, CENTRE - my / mass);
}

/** Shrinks (or stretches) an image to outW×outH, each output pixel the mean of the area it covers. */
function resizeByArea(src: Float32Array, w: number, h: number, outW: number, outH: number): Float32Array {
  const rows = new Float32Array(outW * h);
  const colWeights = areaWeights(w, outW);
  for (let y = 0; y < h; y++) {
    for (const [o, i, wgt] of colWeights) rows[y * outW + o] = rows[y * outW + o]! + wgt * src[y * w + i]!;
  }
  const out = new Float32Array(outW * outH);
  for (const [o, i, wgt] of areaWeights(h, outH)) {
    for (let x = 0; x < outW; x++) out[o * outW + x] = out[o * outW + x]! + wgt * rows[i * outW + x]!;
  }
  return out;
}

/** [output index, input index, weight] for averaging n inputs into m outputs along one axis. */
function areaWeights(n: number, m: number): [number, number, number][] {
  const span = n / m; // input pixels per output pixel
  const out: [number, number, number][] = [];
  for (let o = 0; o < m; o++) {
    const a = o * span;
    const b = a + span;
    for (let i = Math.floor(a); i < Math.min(n, Math.ceil(b)); i++) {
      const overlap = Math.min(b, i + 1) - Math.max(a, i);
      if (overlap > 0) out.push([o, i, overlap / span]);
    }
  }
  return out;
}

/** A w×h image placed in a 28×28 one at (dx, dy) (fractions allowed: bilinear), clipped to [0, 1]. */
function shiftInto(src: Float32Array, w: number, h: number, dx: number, dy: number): Float32Array {
  const out = new Float32Array(MNIST_SIZE * MNIST_SIZE);
  const at = (x: number, y: number): number => (x >= 0 && x < w && y >= 0 && y < h ? src[y * w + x]! : 0);
  for (let y = 0; y < MNIST_SIZE; y++) {
    for (let x = 0; x < MNIST_SIZE; x++) {
      const sx = x - dx;
      const sy = y - dy;
      const ix = Math.floor(sx);
      const iy = Math.floor(sy);
      const fx = sx - ix;
      const fy = sy - iy;
      const v =
        (at(ix, iy) * (1 - fx) + at(ix + 1, iy) * fx) * (1 - fy) + (at(ix, iy + 1) * (1 - fx) + at(ix + 1, iy + 1) * fx) * fy;
      out[y * MNIST_SIZE + x] = Math.min(1, Math.max(0, v));
    }
  }
  return out;
}

/** Paints a 28×28 input onto a (small) canvas: what the model sees. */
export function showInput(canvas: HTMLCanvasElement, pixels: Float32Array | null): void {
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(MNIST_SIZE, MNIST_SIZE);
  for (let i = 0; i < MNIST_SIZE * MNIST_SIZE; i++) {
    const v = Math.round((pixels?.[i] ?? 0) * 255);
    img.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
}
