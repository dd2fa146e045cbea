import { describe, expect, it } from 'vitest';
import { callLength, missedBy } from './calls';

describe('a call message', () => {
  it('says how long a call lasted in words', () => {
    expect(callLength(20_000)).toBe('a few seconds');
    expect(callLength(60_000)).toBe('a minute');
    expect(callLength(3 * 60_000 + 10_000)).toBe('3 minutes');
    expect(callLength(61 * 60_000)).toBe('an hour');
    expect(callLength(150 * 60_000)).toBe('3 hours');
  });

  it('is a missed call for everyone when nobody answered', () => {
    const call = { participants: ['ann'], started_timestamp: 1, ended_timestamp: 2 };
    expect(missedBy(call, 'ann', 'ann')).toBe(true);
    expect(missedBy(call, 'ann', 'bob')).toBe(true);
  });

  it('is missed only by those who did not join an answered call', () => {
    const call = { participants: ['ann', 'bob'], started_timestamp: 1, ended_timestamp: 2 };
    expect(missedBy(call, 'ann', 'bob')).toBe(false);
    expect(missedBy(call, 'ann', 'ann')).toBe(false);
    expect(missedBy(call, 'ann', 'carol')).toBe(true);
  });
});
