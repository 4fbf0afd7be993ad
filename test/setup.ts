// Runs before every test file: poison new buffers with NaN so that an element a kernel forgets
// to write shows up as NaN instead of passing on stale or zeroed memory.
import { debug } from '../src/tensor';

debug.poisonOutputs = true;
