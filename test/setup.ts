// Runs before every test file: poison new buffers with NaN so that an element a kernel forgets
// to write shows up as NaN instead of passing on stale or zeroed memory.
import { debug } from '../src/tensor';

debug.poisonOutputs = true;

// Kernel configurations stay at their untimed defaults unless a test turns tuning on: results
// are repeatable, and no test writes to the user's tuning cache.
process.env.WEBGRAD_AUTOTUNE = '0';
process.env.WEBGRAD_TUNING_FILE = '/dev/null';
