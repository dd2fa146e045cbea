import { describe, expect, it } from 'vitest';
import { idTime } from '../chat/snowflake';
import { idAt, parseSearch } from './query';

const resolve = {
  user: (n: string) => ({ ann: '11', bob: '22' })[n],
  channel: (n: string) => ({ general: '33' })[n],
};

describe('parseSearch', () => {
  it('reads words and filters into the query', () => {
    const { params, problems } = parseSearch('from:ann budget in:#general has:file due', resolve);
    expect(problems).toEqual([]);
    expect(params).toEqual([
      ['content', 'budget due'],
      ['author_id', '11'],
      ['channel_id', '33'],
      ['has', 'file'],
    ]);
  });

  it('finds pinned messages, or those not pinned', () => {
    expect(parseSearch('pinned:true plan', resolve).params).toEqual([
      ['content', 'plan'],
      ['pinned', 'true'],
    ]);
    expect(parseSearch('pinned:FALSE', resolve).params).toEqual([['pinned', 'false']]);
    expect(parseSearch('pinned:yes', resolve).problems).toEqual(['pinned: is true or false']);
  });

  it('turns dates into id bounds', () => {
    const { params } = parseSearch('before:2026-12-01 after:2026-11-30', resolve);
    const get = (k: string) => params.find(([n]) => n === k)![1];
    expect(idTime(get('max_id'))).toBe(Date.parse('2026-12-01T00:00:00Z'));
    expect(idTime(get('min_id'))).toBe(Date.parse('2026-12-01T00:00:00Z') - 1);
  });

  it('says what it could not understand', () => {
    const { problems } = parseSearch('from:zed has:cats before:tomorrow mentions:@bob', resolve);
    expect(problems).toHaveLength(3);
  });

  it('makes the first id of a moment', () => {
    expect(idAt(0)).toBe('0');
    expect(idTime(idAt(Date.parse('2026-06-01T12:00:00Z')))).toBe(Date.parse('2026-06-01T12:00:00Z'));
  });
});
