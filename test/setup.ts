// Runs before every test file: poison new buffers with NaN so that an element a kernel forgets
// to write shows up as NaN instead of passing on stale or zeroed memory.
import { parallelism } from '../src/runtime/wasm/wasm-executor';
import { debug } from '../src/tensor';

debug.poisonOutputs = true;
// The CPU backend shares even the smallest kernel's work between its threads (as it does large
// ones'), so that the tests' small shapes run the kernels' threaded paths too.
parallelism.minBytes = 0;

// Kernel configurations stay at their untimed defaults unless a test turns tuning on: results
// are repeatable, and no test writes to the user's tuning cache.
process.env.WEBGRAD_AUTOTUNE = '0';
process.env.WEBGRAD_TUNING_FILE = '/dev/null';
