import { describe, expect, it } from 'vitest';
import type { MentionEntry } from '../api/types';
import { badgeText, titleFor } from './badge';
import { followEdit, previewText, stillUnread } from './inbox';

const entry = (id: string, read = false): MentionEntry => ({
  id,
  channel_id: '10',
  author_id: '2',
  content: 'hi',
  reason: 'mention',
  read,
});

describe('stillUnread', () => {
  it('keeps an entry until its channel is read past it, here or on another device', () => {
    expect(stillUnread(entry('100'), undefined)).toBe(true);
    expect(stillUnread(entry('100'), { last_read_id: null })).toBe(true);
    expect(stillUnread(entry('100'), { last_read_id: '99' })).toBe(true);
    expect(stillUnread(entry('100'), { last_read_id: '100' })).toBe(false);
    expect(stillUnread(entry('100'), { last_read_id: '1000' })).toBe(false);
  });

  it('drops an entry the server says is read', () => {
    expect(stillUnread(entry('100', true), { last_read_id: null })).toBe(false);
  });
});

describe('previewText', () => {
  it('shows mentions by name and keeps unknown ones as written', () => {
    const names: Record<string, string> = { '1': 'bob' };
    expect(previewText('<@1> and <@7>:\n  the   plan', (id) => names[id])).toBe('@bob and <@7>: the plan');
  });
});

describe('the tab', () => {
  it('shows the unread total in the title, capped at 99+', () => {
    expect(titleFor(0)).toBe('Natter');
    expect(titleFor(3)).toBe('(3) Natter');
    expect(titleFor(120)).toBe('(99+) Natter');
    expect(badgeText(99)).toBe('99');
  });
});

describe('followEdit', () => {
  const list = [entry('200'), entry('100')];
  const edit = (id: string, content: string, edited_at: number | null = 5) => ({ id, content, edited_at });

  it('shows an edited entry with its new text, cut as the server cuts it', () => {
    const { entries, refetch } = followEdit(list, edit('100', 'hi <@1>, the plan'), true);
    expect(entries?.map((e) => e.content)).toEqual(['hi', 'hi <@1>, the plan']);
    expect(refetch).toBe(false);
    const long = followEdit(list, edit('100', '€'.repeat(300)), true).entries;
    expect(Array.from(long![1].content)).toHaveLength(200);
  });

  it('drops an entry the edit no longer concerns me with', () => {
    const { entries, refetch } = followEdit(list, edit('100', 'nobody now'), false);
    expect(entries?.map((e) => e.id)).toEqual(['200']);
    expect(refetch).toBe(false);
  });

  it('asks the server when an edit newly mentions me (its settings decide), and not otherwise', () => {
    expect(followEdit(list, edit('300', 'hey <@1>'), true)).toEqual({ entries: list, refetch: true });
    expect(followEdit(list, edit('300', 'hey all'), false)).toEqual({ entries: list, refetch: false });
    expect(followEdit(undefined, edit('300', 'hey <@1>'), true)).toEqual({
      entries: undefined,
      refetch: true,
    });
  });

  it("leaves the list as it is for media's processing updates", () => {
    expect(followEdit(list, edit('100', 'changed', null), false).entries).toBe(list);
    expect(followEdit(list, edit('100', 'hi'), true).entries).toBe(list);
  });
});
