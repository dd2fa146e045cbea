// A channel's outgoing messages leave in the order they were written, whatever is retried: one
// queue per channel, and the next message is sent only once the one before it is stored or has
// failed for good. Sending several at once and retrying the refused ones one by one let later
// messages overtake earlier ones, and the order the server stores is the order everyone sees,
// for good.
//
// When the edge says slow down (ERROR `rate_limited`), the queue waits (the server's hint if it
// gives one, otherwise a growing delay) and says so, then carries on in order. A send that was not
// answered in time is shown as not sent but stays at the head: the gateway client re-sends it with
// the same nonce after a reconnect, so it is stored once, and the queue waits for that answer.

import type { Message } from '../api/types';
import { backoffDelay, type BackoffPolicy } from '../gateway/backoff';
import { RequestError } from '../gateway/client';

export interface Outgoing {
  channelId: string;
  nonce: string;
  content: string;
  /** A reply: the message of the channel it answers. */
  replyTo?: string;
}

export interface OutboxHooks {
  /** Sends one message; resolves with the stored message, rejects with a RequestError. */
  send(m: Outgoing): Promise<Message>;
  /** The message is stored. */
  sent(m: Outgoing, stored: Message): void;
  /** It failed for good: it stays, marked, for the person to retry or discard. */
  failed(m: Outgoing): void;
  /** No answer in time: shown as not sent while it is still being sent. */
  stalled(m: Outgoing): void;
  /** The channel's queue waits because the server said slow down (true), or is done (false). */
  slowDown(channelId: string, waiting: boolean): void;
}

export interface OutboxEnv {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

/** Refusals worth trying again by themselves: the store was briefly unavailable, or the channel
 * was made a moment ago and this edge has not heard of it yet. */
const TRANSIENT = new Set(['unavailable', 'unknown_channel']);
const TRANSIENT_TRIES = 3;
/** The edge lets one message through per second once a burst is spent: never retry sooner. */
export const SLOW_DOWN: BackoffPolicy = { baseMs: 1_000, maxMs: 8_000, minMs: 1_000 };
const TRANSIENT_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 8_000, minMs: 500 };

interface Entry extends Outgoing {
  dropped: boolean;
  /** Ends the current wait (a send or a pause) early, when the entry is dropped or retried. */
  interrupt: (() => void) | null;
}

const browserEnv: OutboxEnv = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  random: () => Math.random(),
};

export class Outbox {
  private queues = new Map<string, Entry[]>();
  private draining = new Set<string>();
  private readonly env: OutboxEnv;

  constructor(
    private readonly hooks: OutboxHooks,
    env: Partial<OutboxEnv> = {},
  ) {
    this.env = { ...browserEnv, ...env };
  }

  /** Queues a message behind the channel's earlier ones (a retried one goes to the back). */
  push(m: Outgoing) {
    if (this.find(m.nonce)) return;
    const queue = this.queues.get(m.channelId) ?? [];
    queue.push({ ...m, dropped: false, interrupt: null });
    this.queues.set(m.channelId, queue);
    void this.drain(m.channelId);
  }

  /** Whether this message is still queued or being sent. */
  has(nonce: string): boolean {
    return this.find(nonce) !== undefined;
  }

  /** The person asked to retry a message still being sent: stop any pause and send it now. */
  retryNow(nonce: string) {
    this.find(nonce)?.interrupt?.();
  }

  /** The person discarded it: it is not sent, and the queue moves on. */
  drop(nonce: string) {
    const entry = this.find(nonce);
    if (!entry) return;
    entry.dropped = true;
    const queue = this.queues.get(entry.channelId) ?? [];
    // The head is taken off by its own drain loop once interrupted; a queued one goes now.
    if (queue[0] !== entry)
      this.queues.set(
        entry.channelId,
        queue.filter((e) => e !== entry),
      );
    entry.interrupt?.();
  }

  /** Signed out: nothing more is sent. */
  stop() {
    for (const queue of this.queues.values()) for (const e of queue) this.drop(e.nonce);
    this.queues.clear();
  }

  private find(nonce: string): Entry | undefined {
    for (const queue of this.queues.values()) {
      const entry = queue.find((e) => e.nonce === nonce);
      if (entry) return entry;
    }
    return undefined;
  }

  private async drain(channelId: string) {
    if (this.draining.has(channelId)) return;
    this.draining.add(channelId);
    let slowedDown = false;
    try {
      for (;;) {
        const head = this.queues.get(channelId)?.[0];
        if (!head) break;
        slowedDown = (await this.deliver(head)) || slowedDown;
        const queue = this.queues.get(channelId) ?? [];
        this.queues.set(
          channelId,
          queue.filter((e) => e !== head),
        );
      }
    } finally {
      this.draining.delete(channelId);
      if (!this.queues.get(channelId)?.length) this.queues.delete(channelId);
      if (slowedDown) this.hooks.slowDown(channelId, false);
    }
  }

  /** Sends one message until it is stored, fails for good or is dropped. Says whether the
   * server asked to slow down on the way. */
  private async deliver(entry: Entry): Promise<boolean> {
    let transient = 0;
    let limited = 0;
    while (!entry.dropped) {
      let stored: Message | null;
      try {
        stored = await this.interruptible(entry, this.hooks.send(entry));
      } catch (e) {
        const error = e instanceof RequestError ? e : new RequestError('error', String(e));
        if (entry.dropped) break;
        if (error.code === 'rate_limited') {
          if (limited === 0) this.hooks.slowDown(entry.channelId, true);
          const wait = error.retryAfterMs ?? backoffDelay(limited, this.env.random(), SLOW_DOWN);
          limited++;
          await this.pause(entry, wait);
          continue;
        }
        if (error.code === 'timeout') {
          // Still being sent (and re-sent after a reconnect): wait for its answer, in place.
          this.hooks.stalled(entry);
          continue;
        }
        if (TRANSIENT.has(error.code) && transient < TRANSIENT_TRIES) {
          await this.pause(entry, backoffDelay(transient, this.env.random(), TRANSIENT_BACKOFF));
          transient++;
          continue;
        }
        // `superseded` means another request took this nonce over; anything else is final.
        if (error.code !== 'superseded') this.hooks.failed(entry);
        break;
      }
      if (stored === null) continue; // interrupted: dropped, or retried by hand
      this.hooks.sent(entry, stored);
      break;
    }
    return limited > 0;
  }

  /** The send's answer, or null if the entry is interrupted first. */
  private interruptible<T>(entry: Entry, p: Promise<T>): Promise<T | null> {
    return new Promise<T | null>((resolve, reject) => {
      const interrupt = () => resolve(null);
      entry.interrupt = interrupt;
      p.then(resolve, reject).finally(() => {
        if (entry.interrupt === interrupt) entry.interrupt = null;
      });
    });
  }

  private pause(entry: Entry, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.env.setTimeout(done, ms);
      const env = this.env;
      function done() {
        env.clearTimeout(timer);
        if (entry.interrupt === done) entry.interrupt = null;
        resolve();
      }
      entry.interrupt = done;
    });
  }
}
