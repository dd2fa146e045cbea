import { afterEach, describe, expect, it, vi } from 'vitest';

import { checkAnswer, checkFrame } from './contract';

const user = { id: '1', username: 'ann', display_name: null, avatar_url: null, bio: null, status: 'online' };
const message = { id: '5', channel_id: '2', author_id: '1', content: 'hi' };

afterEach(() => vi.restoreAllMocks());

describe('frames', () => {
  it('are taken as they are when they match the contract for their opcode and name', () => {
    const ready = {
      op: 0,
      t: 'READY',
      s: null,
      d: { v: 1, session_id: 's', seq: 3, user, channels: [], presences: [] },
    };
    expect(checkFrame(ready)).toEqual(ready);
    expect(checkFrame({ op: 0, t: 'MESSAGE_CREATE', s: 4, d: message })).not.toBeNull();
    expect(checkFrame({ op: 10, d: { heartbeat_interval: 41250 } })).not.toBeNull();
    expect(checkFrame({ op: 24, d: { nonce: 'n', message } })).not.toBeNull();
    expect(checkFrame({ op: 11, d: null })).not.toBeNull();
  });

  it('are dropped and logged, never cast, when they do not match', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const { content: _, ...without } = message;
    expect(checkFrame({ op: 0, t: 'MESSAGE_CREATE', s: 4, d: without })).toBeNull();
    expect(checkFrame({ op: 0, t: 'SOMETHING_NEW', s: null, d: {} })).toBeNull();
    expect(checkFrame({ op: 10, d: { heartbeat_interval: 'soon' } })).toBeNull();
    expect(checkFrame({ op: 42, d: null })).toBeNull();
    expect(checkFrame({ op: 0, t: 'MESSAGE_CREATE', s: 'four', d: message })).toBeNull();
    expect(checkFrame('not a frame')).toBeNull();
    expect(warn).toHaveBeenCalledTimes(6);
  });
});

describe('REST answers', () => {
  it('are checked against what their route answers', () => {
    expect(checkAnswer('GET', '/api/v1/users/@me', user)).toBeNull();
    expect(
      checkAnswer('GET', '/api/v1/channels/9/messages?limit=5', { messages: [message], authors: [user] }),
    ).toBeNull();
    expect(checkAnswer('GET', '/api/v1/users/@me', { id: 1 })).toMatch(/users\/@me/);
    expect(checkAnswer('GET', '/api/v1/presences', { user_id: '1' })).not.toBeNull();
  });

  it('of routes that answer no JSON are not checked', () => {
    expect(checkAnswer('DELETE', '/api/v1/channels/9/messages/5', undefined)).toBeNull();
  });
});
