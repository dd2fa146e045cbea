// Reconnect delays: exponential with "full jitter" (a random delay between zero and the
// exponential cap), so thousands of clients dropped by one dead edge do not all come back in the
// same instant. https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/

export interface BackoffPolicy {
  /** The cap for the first retry, in ms. */
  baseMs: number;
  /** The largest delay, in ms. */
  maxMs: number;
  /** The smallest delay, in ms, so a failing server is never hammered in a tight loop. */
  minMs: number;
}

export const defaultBackoff: BackoffPolicy = { baseMs: 500, maxMs: 30_000, minMs: 100 };

/** The delay before retry number `attempt` (0 for the first), given a random number in [0, 1). */
export function backoffDelay(attempt: number, random: number, policy = defaultBackoff): number {
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(policy.minMs, Math.floor(random * cap));
}
