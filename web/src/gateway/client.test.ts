import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffDelay } from './backoff';
import { GatewayClient, RequestError, type SocketLike } from './client';

/** A WebSocket stand-in: records what the client sends, lets the test play the server. */
class FakeSocket implements SocketLike {
  sent: Array<{ op: number; d: any }> = [];
  closedWith: number | null = null;
  onopen: SocketLike['onopen'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code?: number) {
    this.closedWith = code ?? 1000;
  }
  // server side
  frame(op: number, d: unknown = null, t: string | null = null, s: number | null = null) {
    this.onmessage?.({ data: JSON.stringify({ op, d, t, s }) });
  }
  hello(interval = 40_000) {
    this.frame(10, { heartbeat_interval: interval });
  }
  dispatch(t: string, d: unknown, s: number | null = null) {
    this.frame(0, d, t, s);
  }
  drop(code = 1006) {
    this.onclose?.({ code });
  }
  ops() {
    return this.sent.map((f) => f.op);
  }
}

const ready = (session = 'sess-1', seq = 10) => ({
  v: 1,
  session_id: session,
  seq,
  user: { id: '1', username: 'ann', display_name: null, avatar_url: null, bio: null, status: 'online' },
  channels: [],
  presences: [],
});

/** A message as the gateway sends it (MESSAGE_CREATE's payload, an ACK's `message`). */
const message = (id: string) => ({ id, channel_id: '1', author_id: '1', content: 'hi' });

function setup(opts: { urls?: string[]; random?: number } = {}) {
  const sockets: FakeSocket[] = [];
  const tokens: boolean[] = [];
  const discover = vi.fn(async () => opts.urls ?? ['ws://edge-1/gateway', 'ws://edge-2/gateway']);
  const client = new GatewayClient({
    discover,
    token: async (fresh) => {
      tokens.push(fresh);
      return fresh ? 'fresh-token' : 'token';
    },
    env: {
      createSocket: (url) => {
        const s = new FakeSocket(url);
        sockets.push(s);
        return s;
      },
      random: () => opts.random ?? 0.5,
    },
    requestTimeoutMs: 5_000,
  });
  const last = () => sockets[sockets.length - 1];
  return { client, sockets, last, discover, tokens };
}

/** Lets the client's awaited promises (discovery, token) settle. */
const settle = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('backoff', () => {
  it('grows exponentially and is capped', () => {
    expect(backoffDelay(0, 0.999)).toBeLessThanOrEqual(500);
    expect(backoffDelay(3, 0.999)).toBeGreaterThan(3_000);
    expect(backoffDelay(3, 0.999)).toBeLessThanOrEqual(4_000);
    expect(backoffDelay(50, 0.999)).toBeLessThanOrEqual(30_000);
  });

  it('is spread by jitter but never below the floor', () => {
    const delays = [0, 0.25, 0.5, 0.75].map((r) => backoffDelay(4, r));
    expect(new Set(delays).size).toBe(4);
    expect(backoffDelay(4, 0)).toBe(100);
  });
});

describe('connecting', () => {
  it('identifies with the token after HELLO and is ready on READY', async () => {
    const { client, last, discover } = setup();
    const states: string[] = [];
    client.on('state', (s) => states.push(s.state));
    client.start();
    await settle();
    expect(discover).toHaveBeenCalledOnce();
    expect(last().url).toBe('ws://edge-1/gateway');
    last().hello();
    await settle();
    expect(last().sent).toEqual([{ op: 2, d: { token: 'token' } }]);
    last().dispatch('READY', ready());
    expect(client.state).toBe('ready');
    expect(client.session).toBe('sess-1');
    expect(client.seq).toBe(10);
    expect(states).toEqual(['connecting', 'handshaking', 'ready']);
  });

  it('tracks the highest sequence number from stored events only', async () => {
    const { client, last } = setup();
    const events: string[] = [];
    client.on('dispatch', (e) => events.push(e.t));
    client.start();
    await settle();
    last().hello();
    await settle();
    last().dispatch('READY', ready());
    last().dispatch('MESSAGE_CREATE', message('5'), 12);
    last().dispatch('TYPING_START', { channel_id: '1', user_id: '2', timestamp: 1 }, null);
    last().dispatch('MESSAGE_CREATE', message('6'), 11); // out of order: does not move seq back
    expect(client.seq).toBe(12);
    expect(events).toEqual(['MESSAGE_CREATE', 'TYPING_START', 'MESSAGE_CREATE']);
  });
});

describe('heartbeats', () => {
  it('sends the last sequence on the interval, the first after a jittered delay', async () => {
    const { client, last } = setup({ random: 0.25 });
    client.start();
    await settle();
    last().hello(40_000);
    await settle();
    last().dispatch('READY', ready('s', 3));
    await vi.advanceTimersByTimeAsync(9_999);
    expect(last().ops()).not.toContain(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(last().sent.at(-1)).toEqual({ op: 1, d: 3 });
    last().frame(11);
    await vi.advanceTimersByTimeAsync(40_000);
    expect(
      last()
        .ops()
        .filter((op) => op === 1),
    ).toHaveLength(2);
  });

  it('treats a missing ACK as a dead connection and resumes on a new socket', async () => {
    const { client, sockets, last } = setup({ random: 0.25 });
    client.start();
    await settle();
    last().hello(40_000);
    await settle();
    last().dispatch('READY', ready('s', 3));
    await vi.advanceTimersByTimeAsync(10_000); // first heartbeat, never acknowledged
    await vi.advanceTimersByTimeAsync(40_000); // second is due: the connection is a zombie
    expect(sockets[0].closedWith).not.toBeNull();
    expect(client.state).toBe('connecting');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sockets).toHaveLength(2);
    last().hello();
    await settle();
    expect(last().sent[0]).toEqual({ op: 6, d: { token: 'token', session_id: 's', seq: 3 } });
  });
});

describe('resuming', () => {
  it('resumes with the session and the last sequence after a drop, on another edge', async () => {
    const { client, sockets, last } = setup();
    const reconnecting: boolean[] = [];
    client.on('state', (s) => reconnecting.push(s.reconnecting));
    client.start();
    await settle();
    last().hello();
    await settle();
    last().dispatch('READY', ready('s-9', 40));
    last().dispatch('MESSAGE_CREATE', message('1'), 41);
    last().drop(1006);
    expect(client.state).toBe('connecting');
    expect(reconnecting.at(-1)).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sockets).toHaveLength(2);
    expect(last().url).toBe('ws://edge-2/gateway');
    last().hello();
    await settle();
    expect(last().sent[0]).toEqual({ op: 6, d: { token: 'token', session_id: 's-9', seq: 41 } });
    const resumed = vi.fn();
    client.on('resumed', resumed);
    last().dispatch('MESSAGE_CREATE', message('2'), 42); // the replay
    last().dispatch('RESUMED', { seq: 42, channels: [] });
    expect(resumed).toHaveBeenCalledOnce();
    expect(client.state).toBe('ready');
    expect(client.seq).toBe(42);
  });

  it('identifies anew after INVALID_SESSION', async () => {
    const { client, sockets, last } = setup();
    client.start();
    await settle();
    last().hello();
    await settle();
    last().dispatch('READY', ready('old', 5));
    last().drop(1006);
    await vi.advanceTimersByTimeAsync(1_000);
    last().hello();
    await settle();
    expect(last().sent[0].op).toBe(6);
    last().frame(9, false);
    expect(client.session).toBeNull();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sockets).toHaveLength(3);
    last().hello();
    await settle();
    expect(last().sent[0]).toEqual({ op: 2, d: { token: 'token' } });
    const onReady = vi.fn();
    client.on('ready', onReady);
    last().dispatch('READY', ready('new', 100));
    expect(onReady).toHaveBeenCalledOnce();
    expect(client.session).toBe('new');
  });

  it('reconnects at once on RECONNECT (a draining edge) and resumes', async () => {
    const { client, sockets, last } = setup();
    client.start();
    await settle();
    last().hello();
    await settle();
    last().dispatch('READY', ready('s', 7));
    last().frame(7);
    await settle();
    expect(sockets).toHaveLength(2);
    last().hello();
    await settle();
    expect(last().sent[0].op).toBe(6);
  });

  it('backs off with growing delays while edges stay down', async () => {
    const { client, sockets, last } = setup({ random: 0.999 });
    client.start();
    await settle();
    last().hello();
    await settle();
    last().dispatch('READY', ready());
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      last().drop(1006);
      const before = sockets.length;
      const start = Date.now();
      while (sockets.length === before) await vi.advanceTimersByTimeAsync(50);
      times.push(Date.now() - start);
    }
    expect(times[1]).toBeGreaterThan(times[0]);
    expect(times[2]).toBeGreaterThan(times[1]);
    expect(times[3]).toBeGreaterThan(times[2]);
  });

  it('asks for a fresh token when the token was refused, and gives up after a second refusal', async () => {
    const { client, last, tokens } = setup();
    const failed = vi.fn();
    client.on('authFailed', failed);
    client.start();
    await settle();
    last().hello();
    await settle();
    last().drop(4004);
    await vi.advanceTimersByTimeAsync(1_000);
    last().hello();
    await settle();
    expect(tokens).toEqual([false, true]);
    last().drop(4004);
    expect(failed).toHaveBeenCalledOnce();
    expect(client.state).toBe('stopped');
  });
});

describe('requests', () => {
  it('resolves a send on its ACK, matched by nonce', async () => {
    const { client, last } = setup();
    client.start();
    await settle();
    last().hello();
    await settle();
    last().dispatch('READY', ready());
    const answer = client.request(20, { channel_id: '1', content: 'hi', nonce: 'n1' });
    expect(last().sent.at(-1)).toEqual({ op: 20, d: { channel_id: '1', content: 'hi', nonce: 'n1' } });
    last().frame(24, { nonce: 'n1', message: message('9') });
    await expect(answer).resolves.toEqual({ nonce: 'n1', message: message('9') });
  });

  it('rejects on ERROR with its code', async () => {
    const { client, last } = setup();
    client.start();
    await settle();
    last().hello();
    await settle();
    last().dispatch('READY', ready());
    const answer = client.request(20, { channel_id: '1', content: ' ', nonce: 'n2' });
    last().frame(25, { nonce: 'n2', code: 'invalid_content', message: 'blank' });
    await expect(answer).rejects.toEqual(new RequestError('invalid_content', 'blank'));
  });

  it("passes on the server's hint of how long to wait when it says slow down", async () => {
    const { client, last } = setup();
    client.start();
    await settle();
    last().hello();
    await settle();
    last().dispatch('READY', ready());
    const hinted = client.request(20, { channel_id: '1', content: 'a', nonce: 'n3' });
    const plain = client.request(20, { channel_id: '1', content: 'b', nonce: 'n4' });
    last().frame(25, { nonce: 'n3', code: 'rate_limited', message: 'slow down', retry_after: 1.5 });
    last().frame(25, { nonce: 'n4', code: 'rate_limited', message: 'slow down' });
    await expect(hinted).rejects.toMatchObject({ code: 'rate_limited', retryAfterMs: 1500 });
    await expect(plain).rejects.toMatchObject({ code: 'rate_limited', retryAfterMs: undefined });
  });

  it('re-sends an unanswered send with the same nonce after reconnecting, and only then', async () => {
    const { client, last } = setup();
    client.start();
    await settle();
    last().hello();
    await settle();
    last().dispatch('READY', ready());
    const answer = client.request(20, { channel_id: '1', content: 'hi', nonce: 'same' });
    last().drop(1006);
    await vi.advanceTimersByTimeAsync(1_000);
    last().hello();
    await settle();
    expect(last().ops()).toEqual([6]); // nothing before the session is back
    last().dispatch('RESUMED', { seq: 10, channels: [] });
    expect(last().sent.at(-1)).toEqual({ op: 20, d: { channel_id: '1', content: 'hi', nonce: 'same' } });
    last().frame(24, { nonce: 'same', message: message('9') });
    await expect(answer).resolves.toBeTruthy();
  });

  it('queues a send made while disconnected until the session is ready', async () => {
    const { client, last } = setup();
    client.start();
    await settle();
    const answer = client.request(20, { channel_id: '1', content: 'early', nonce: 'e' });
    last().hello();
    await settle();
    expect(last().ops()).toEqual([2]);
    last().dispatch('READY', ready());
    expect(last().ops()).toEqual([2, 20]);
    last().frame(24, { nonce: 'e', message: message('1') });
    await expect(answer).resolves.toBeTruthy();
  });

  it('reports a timeout but keeps the request for the next reconnect', async () => {
    const { client, last } = setup();
    client.start();
    await settle();
    last().hello();
    await settle();
    last().dispatch('READY', ready());
    const answer = client.request(20, { channel_id: '1', content: 'slow', nonce: 't' });
    const caught = answer.catch((e: RequestError) => e.code);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await caught).toBe('timeout');
    last().drop(1006);
    await vi.advanceTimersByTimeAsync(1_000);
    last().hello();
    await settle();
    last().dispatch('RESUMED', { seq: 10, channels: [] });
    expect(last().sent.at(-1)?.d.nonce).toBe('t');
  });

  it('stop() closes the socket and fails what is unanswered', async () => {
    const { client, last } = setup();
    client.start();
    await settle();
    last().hello();
    await settle();
    last().dispatch('READY', ready());
    const answer = client.request(20, { channel_id: '1', content: 'x', nonce: 's' });
    client.stop();
    await expect(answer).rejects.toBeInstanceOf(RequestError);
    expect(last().closedWith).toBe(1000);
    expect(client.state).toBe('stopped');
  });
});
