import { describe, expect, it } from 'vitest';
import type { Message } from '../api/types';
import { mentionedIds, mentionsUser, withMentionedNames } from './mentions';

const message = (extra: object) => ({ id: '9', channel_id: '1', author_id: '2', content: 'x', ...extra });
/** A message's `mentions` as the server may send them: user objects, or bare ids from before. */
const carrying = (mentions: unknown[]) => ({ mentions }) as unknown as Pick<Message, 'mentions'>;
const ann = { id: '5', username: 'ann', global_name: 'Ann', avatar_url: null };

describe('mentions', () => {
  it('count my name, my roles and everyone, never my own message', () => {
    expect(mentionsUser(message({ mentions: [ann] }), '5', [])).toBe(true);
    expect(mentionsUser(message({ mentions: [{ ...ann, id: '6' }] }), '5', [])).toBe(false);
    expect(mentionsUser(message({ mention_roles: ['7'] }), '5', ['7'])).toBe(true);
    expect(mentionsUser(message({ mention_roles: ['7'] }), '5', ['8'])).toBe(false);
    expect(mentionsUser(message({ mention_everyone: true }), '5', [])).toBe(true);
    expect(mentionsUser(message({ mention_everyone: true, author_id: '5' }), '5', [])).toBe(false);
    expect(mentionsUser(message({}), '5', [])).toBe(false);
  });

  it('read the bare ids of a message from before as user objects', () => {
    expect(mentionedIds(carrying(['5', ann]))).toEqual(['5', '5']);
    expect(mentionsUser(message({ mentions: ['5'] }), '5', [])).toBe(true);
  });

  it('name people the client does not know from the message, and prefer what it knows', () => {
    const known = { user: (id: string) => (id === '7' ? 'Cat' : undefined), role: () => undefined };
    const bob = { id: '6', username: 'bob', global_name: null, avatar_url: null };
    const names = withMentionedNames(known, carrying([ann, bob, '8', { ...ann, id: '7' }]));
    expect(names.user('5')).toBe('Ann');
    expect(names.user('6')).toBe('bob');
    expect(names.user('7')).toBe('Cat');
    expect(names.user('8')).toBeUndefined();
    expect(withMentionedNames(known, carrying([]))).toBe(known);
  });
});
