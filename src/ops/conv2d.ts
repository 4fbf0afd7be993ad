// PLACEHOLDER: replaced by the conv2d work.
import type { Tensor } from '../tensor';
export interface Conv2dOptions { stride?: number | [number, number]; padding?: number | [number, number]; dilation?: number | [number, number] }
export function conv2d(_x: Tensor, _w: Tensor, _b?: Tensor | null, _opts: Conv2dOptions = {}): Tensor { throw new Error('conv2d: not implemented yet'); }
