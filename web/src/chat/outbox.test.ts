import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Message } from '../api/types';
import { RequestError } from '../gateway/client';
import { Outbox, type Outgoing } from './outbox';

/** A server the test answers by hand: every send waits until the test resolves or refuses it. */
function setup() {
  const calls: Array<{ m: Outgoing; resolve(): void; reject(code: string, retryAfterMs?: number): void }> =
    [];
  const log: string[] = [];
  const outbox = new Outbox(
    {
      send: (m) =>
        new Promise<Message>((resolve, reject) => {
          log.push(`send ${m.content}`);
          calls.push({
            m,
            resolve: () =>
              resolve({
                id: String(calls.length),
                channel_id: m.channelId,
                author_id: '1',
                content: m.content,
              }),
            reject: (code, retryAfterMs) => reject(new RequestError(code, code, retryAfterMs)),
          });
        }),
      sent: (m) => log.push(`sent ${m.content}`),
      failed: (m) => log.push(`failed ${m.content}`),
      stalled: (m) => log.push(`stalled ${m.content}`),
      slowDown: (channelId, waiting) => log.push(`slow down ${channelId} ${waiting}`),
    },
    { random: () => 0.5 },
  );
  const push = (content: string, channelId = 'c1') =>
    outbox.push({ channelId, nonce: `n-${content}`, content });
  const last = () => calls[calls.length - 1];
  return { outbox, calls, log, push, last };
}

const settle = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the outbox', () => {
  it("sends a channel's messages one at a time, in the order written", async () => {
    const { push, last, log } = setup();
    push('a');
    push('b');
    push('c');
    await settle();
    expect(log).toEqual(['send a']);
    last().resolve();
    await settle();
    last().resolve();
    await settle();
    last().resolve();
    await settle();
    expect(log).toEqual(['send a', 'sent a', 'send b', 'sent b', 'send c', 'sent c']);
  });

  it('waits when the server says slow down, says so, then carries on in order', async () => {
    const { push, last, log } = setup();
    push('a');
    push('b');
    await settle();
    last().reject('rate_limited');
    await settle();
    expect(log).toEqual(['send a', 'slow down c1 true']);
    await vi.advanceTimersByTimeAsync(999);
    expect(log.at(-1)).toBe('slow down c1 true'); // b has not overtaken a
    await vi.advanceTimersByTimeAsync(1);
    expect(log.at(-1)).toBe('send a');
    last().resolve();
    await settle();
    last().resolve();
    await settle();
    expect(log).toEqual([
      'send a',
      'slow down c1 true',
      'send a',
      'sent a',
      'send b',
      'sent b',
      'slow down c1 false',
    ]);
  });

  it("waits as long as the server's hint says, when it gives one", async () => {
    const { push, last, log } = setup();
    push('a');
    await settle();
    last().reject('rate_limited', 3_000);
    await vi.advanceTimersByTimeAsync(2_999);
    expect(log.filter((l) => l === 'send a')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(log.filter((l) => l === 'send a')).toHaveLength(2);
  });

  it('backs off further each time it is refused again', async () => {
    const { push, last, log } = setup();
    push('a');
    await settle();
    last().reject('rate_limited'); // 1 s
    await vi.advanceTimersByTimeAsync(1_000);
    last().reject('rate_limited'); // up to 2 s (1 s with this random)
    await vi.advanceTimersByTimeAsync(1_000);
    last().reject('rate_limited'); // up to 4 s: 2 s with this random
    await vi.advanceTimersByTimeAsync(1_999);
    expect(log.filter((l) => l === 'send a')).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(log.filter((l) => l === 'send a')).toHaveLength(4);
  });

  it('lets the next one go when a message is refused for good', async () => {
    const { push, last, log } = setup();
    push('a');
    push('b');
    await settle();
    last().reject('invalid_content');
    await settle();
    expect(log).toEqual(['send a', 'failed a', 'send b']);
  });

  it('tries a transient refusal three more times, then gives up on it', async () => {
    const { push, last, log } = setup();
    push('a');
    await settle();
    for (let i = 0; i < 3; i++) {
      last().reject('unavailable');
      await vi.advanceTimersByTimeAsync(8_000);
    }
    last().reject('unavailable');
    await settle();
    expect(log).toEqual(['send a', 'send a', 'send a', 'send a', 'failed a']);
  });

  it('keeps an unanswered message at the head, shown as not sent, until it is answered', async () => {
    const { push, last, log } = setup();
    push('a');
    push('b');
    await settle();
    last().reject('timeout');
    await settle();
    expect(log).toEqual(['send a', 'stalled a', 'send a']);
    last().resolve();
    await settle();
    expect(log.slice(3)).toEqual(['sent a', 'send b']);
  });

  it('moves on when the person discards the message being sent, and sends nothing discarded', async () => {
    const { outbox, push, last, log } = setup();
    push('a');
    push('b');
    push('c');
    await settle();
    outbox.drop('n-b');
    outbox.drop('n-a');
    await settle();
    expect(outbox.has('n-a')).toBe(false);
    last().resolve();
    await settle();
    expect(log).toEqual(['send a', 'send c', 'sent c']);
  });

  it('sends a paused message at once when the person retries it', async () => {
    const { outbox, push, last, log } = setup();
    push('a');
    await settle();
    last().reject('rate_limited', 60_000);
    await settle();
    outbox.retryNow('n-a');
    await settle();
    expect(log).toEqual(['send a', 'slow down c1 true', 'send a']);
  });

  it('lets channels go on side by side', async () => {
    const { push, log } = setup();
    push('a', 'c1');
    push('b', 'c2');
    await settle();
    expect(log).toEqual(['send a', 'send b']);
  });

  it('sends nothing more once stopped', async () => {
    const { outbox, push, last, log } = setup();
    push('a');
    push('b');
    await settle();
    outbox.stop();
    last().resolve();
    await settle();
    expect(log).toEqual(['send a']);
  });
});
