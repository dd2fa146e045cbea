import { describe, expect, it } from 'vitest';
import { mentionsUser } from './mentions';

const message = (extra: object) => ({ id: '9', channel_id: '1', author_id: '2', content: 'x', ...extra });

describe('mentions', () => {
  it('count my name, my roles and everyone, never my own message', () => {
    expect(mentionsUser(message({ mentions: ['5'] }), '5', [])).toBe(true);
    expect(mentionsUser(message({ mention_roles: ['7'] }), '5', ['7'])).toBe(true);
    expect(mentionsUser(message({ mention_roles: ['7'] }), '5', ['8'])).toBe(false);
    expect(mentionsUser(message({ mention_everyone: true }), '5', [])).toBe(true);
    expect(mentionsUser(message({ mention_everyone: true, author_id: '5' }), '5', [])).toBe(false);
    expect(mentionsUser(message({}), '5', [])).toBe(false);
  });
});
