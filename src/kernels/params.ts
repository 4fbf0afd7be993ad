// Builds a kernel's uniform `Params` struct byte by byte, following WGSL's layout rules: scalars
// are 4-byte aligned, vec4 and arrays of vec4 are 16-byte aligned. Write fields in the order the
// WGSL struct declares them; `vec` pads to 16 bytes first, like WGSL does.

export const PARAMS_SLOT_BYTES = 256;

export class Params {
  readonly bytes = new ArrayBuffer(PARAMS_SLOT_BYTES);
  private view = new DataView(this.bytes);
  private offset = 0;

  u32(...values: number[]): this {
    for (const v of values) {
      this.check(4);
      this.view.setUint32(this.offset, v >>> 0, true);
      this.offset += 4;
    }
    return this;
  }

  i32(...values: number[]): this {
    for (const v of values) {
      this.check(4);
      this.view.setInt32(this.offset, v | 0, true);
      this.offset += 4;
    }
    return this;
  }

  f32(...values: number[]): this {
    for (const v of values) {
      this.check(4);
      this.view.setFloat32(this.offset, v, true);
      this.offset += 4;
    }
    return this;
  }

  /**
   * An `array<vec4u, n/4>` (n a multiple of 4): `values` padded with `fill` to n entries.
   * Used for shapes and strides of up to n dimensions.
   */
  vecU32(values: readonly number[], n: number, fill = 0): this {
    this.align(16);
    for (let i = 0; i < n; i++) this.u32(i < values.length ? values[i]! : fill);
    return this;
  }

  align(to: number): this {
    this.offset = Math.ceil(this.offset / to) * to;
    return this;
  }

  get byteLength(): number {
    return Math.max(16, Math.ceil(this.offset / 16) * 16);
  }

  private check(n: number): void {
    if (this.offset + n > PARAMS_SLOT_BYTES) throw new Error(`kernel params exceed ${PARAMS_SLOT_BYTES} bytes`);
  }
}
