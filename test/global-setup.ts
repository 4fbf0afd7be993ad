// Runs once before the test files: builds the wasm kernels if any of their sources is newer than
// the compiled modules (a no-op otherwise), so that a fresh clone's `npx vitest run` works.
// @ts-expect-error: a plain .mjs script without type declarations
import { buildWasm } from '../scripts/build-wasm.mjs';

export default async function setup(): Promise<void> {
  await buildWasm();
}
