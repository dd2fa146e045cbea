import { describe, expect, it } from 'vitest';
import type { Overwrite } from './types';
import cases from './permissions.cases.json';
import { effective, names, parse, Permission, permissionsIn, rankOf } from './permissions';

interface Case {
  name: string;
  subject: {
    guild_id: string;
    user_id: string;
    owner: boolean;
    everyone: string;
    roles: Array<[string, string]>;
    timed_out: boolean;
  };
  overwrites: Overwrite[] | null;
  effective: string;
}

describe('effective permissions, as proto::permissions::effective answers them', () => {
  const all = (cases as { cases: Case[] }).cases;

  it('has the Rust function’s cases to check', () => {
    expect(all.length).toBeGreaterThan(100);
  });

  it.each(all.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const got = effective(
      {
        guildId: c.subject.guild_id,
        userId: c.subject.user_id,
        owner: c.subject.owner,
        everyone: parse(c.subject.everyone),
        roles: c.subject.roles.map(([id, p]) => [id, parse(p)]),
        timedOut: c.subject.timed_out,
      },
      c.overwrites,
    );
    expect(names(got)).toEqual(names(parse(c.effective)));
    expect(got).toBe(BigInt(c.effective));
  });
});

describe('a member of a server', () => {
  const guild = {
    id: '100',
    owner_id: '1',
    roles: [
      {
        id: '100',
        name: '@everyone',
        color: 0,
        hoist: false,
        mentionable: false,
        position: 0,
        permissions: '68608',
      },
      { id: '201', name: 'mods', color: 0, hoist: true, mentionable: false, position: 1, permissions: '0' },
    ],
  };
  const bob = (roles: string[], until: number | null = null) => ({
    user: { id: '7', username: 'bob', status: 'online' as const },
    roles,
    joined_at: 0,
    communication_disabled_until: until,
  });
  const modsOnly = {
    permission_overwrites: [
      { id: '100', type: 0 as const, allow: '0', deny: String(Permission.VIEW_CHANNEL) },
      { id: '201', type: 0 as const, allow: String(Permission.VIEW_CHANNEL), deny: '0' },
    ],
  };

  it('sees a channel only mods may view once given mods', () => {
    expect(permissionsIn(guild, bob([]), modsOnly)).toBe(0n);
    expect(permissionsIn(guild, bob(['201']), modsOnly) & Permission.VIEW_CHANNEL).toBe(
      Permission.VIEW_CHANNEL,
    );
  });

  it('may not send while timed out, and may again after', () => {
    const now = 1_000_000;
    const send = (until: number) => permissionsIn(guild, bob([], until), {}, now) & Permission.SEND_MESSAGES;
    expect(send(now + 60_000)).toBe(0n);
    expect(send(now - 1)).toBe(Permission.SEND_MESSAGES);
  });

  it('ranks by its highest role, the owner above all', () => {
    expect(rankOf(guild, bob(['201']))).toBe(1);
    expect(rankOf(guild, bob([]))).toBe(0);
    expect(rankOf(guild, { ...bob([]), user: { ...bob([]).user, id: '1' } })).toBe(Infinity);
  });
});
