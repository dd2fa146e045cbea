import { describe, expect, it } from 'vitest';
import type { MentionEntry } from '../api/types';
import { badgeText, titleFor } from './badge';
import { previewText, stillUnread } from './inbox';

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
