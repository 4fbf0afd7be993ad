// The coordinator's command line: every value is checked before anything starts, and a mistake
// names the option, the value and its bounds (a negative number is a value, not an "ambiguous" option).

import { describe, expect, it } from 'vitest';
import { coordinatorOptions } from '../../src/cli/coordinator';

describe('npm run coordinator', () => {
  it('takes its options, in seconds and bytes', () => {
    expect(coordinatorOptions(['--port', '0', '--timeout', '2.5', '--step-deadline', '90', '--max-message', '65536'])).toMatchObject({
      port: 0,
      timeoutMs: 2500,
      minStepDeadlineMs: 90_000,
      maxMessageBytes: 65536,
    });
    expect(coordinatorOptions([])).toMatchObject({ host: '127.0.0.1', port: 8765, timeoutMs: 30_000, minStepDeadlineMs: undefined });
    expect(coordinatorOptions(['--help'])).toBeNull();
  });

  it('refuses values out of bounds with the option, the value and the bounds', () => {
    expect(() => coordinatorOptions(['--timeout', '-3'])).toThrow('--timeout must be a number from 0.1 to 86,400 seconds, got -3');
    expect(() => coordinatorOptions(['--step-deadline', '-1'])).toThrow('--step-deadline must be a number from 0.1 to 86,400 seconds, got -1');
    expect(() => coordinatorOptions(['--step-deadline', '0'])).toThrow('--step-deadline must be a number from 0.1 to 86,400 seconds, got 0');
    expect(() => coordinatorOptions(['--step-deadline', 'soon'])).toThrow('--step-deadline must be a number from 0.1 to 86,400 seconds, got soon');
    expect(() => coordinatorOptions(['--timeout', '1e400'])).toThrow('--timeout must be a number from 0.1 to 86,400 seconds, got 1e400');
    expect(() => coordinatorOptions(['--timeout', ''])).toThrow('got ');
    expect(() => coordinatorOptions(['--port', '70000'])).toThrow('--port must be a number from 0 to 65,535, got 70000');
    expect(() => coordinatorOptions(['--port', '80.5'])).toThrow('--port must be a whole number from 0 to 65,535, got 80.5');
    expect(() => coordinatorOptions(['--max-message', '100'])).toThrow('--max-message must be a number from 65,536 to 268,435,456 bytes, got 100');
    expect(() => coordinatorOptions(['--bogus'])).toThrow(/Unknown option '--bogus'/);
  });
});
