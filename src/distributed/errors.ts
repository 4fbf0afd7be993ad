// Errors of data-parallel training. Both are WebGradErrors whose messages say what went wrong and
// with whom: the coordinator, a peer, or this replica's own connection.

import { named, WebGradError } from '../runtime/errors';

/** The session failed for this replica: the coordinator refused or dropped it, or it left. */
export class DistributedError extends WebGradError {
  static {
    named(this, 'DistributedError');
  }
}

/** A message that breaks the protocol: malformed, oversized, or with tensors that do not fit the model. */
export class ProtocolError extends DistributedError {
  static {
    named(this, 'ProtocolError');
  }
}
