import { useEffect, useState } from 'react';
import { useChat, usePresence } from '../../chat/hooks';
import { useGuildMembers } from '../../guilds/hooks';
import { isTimedOut } from '../../guilds/permissions';
import type { GuildState } from '../../guilds/store';
import type { GuildMember, Role } from '../../guilds/types';
import { Avatar, statusLabel } from '../Avatar';
import { presenceOf } from '../presence';
import { roleColor } from './ChannelDialogs';
import { MemberActionsDialog, memberName, useMemberPowers } from './MemberActions';

/**
 * Members grouped as Discord's list groups them: each hoisted role (highest first) with its
 * online members, then everyone else online, then offline. A member's name takes the colour of
 * their highest coloured role.
 */
export function groupMembers(
  guild: Pick<GuildState, 'roles'>,
  members: Array<GuildMember & { offline: boolean }>,
): Array<{ title: string; role: Role | null; members: GuildMember[] }> {
  const hoisted = guild.roles.filter((r) => r.hoist).sort((a, b) => b.position - a.position);
  const groups = new Map<string, GuildMember[]>();
  const online: GuildMember[] = [];
  const offline: GuildMember[] = [];
  for (const m of members) {
    if (m.offline) {
      offline.push(m);
      continue;
    }
    const top = hoisted.find((r) => m.roles.includes(r.id));
    if (top) groups.set(top.id, [...(groups.get(top.id) ?? []), m]);
    else online.push(m);
  }
  return [
    ...hoisted
      .filter((r) => groups.has(r.id))
      .map((r) => ({ title: r.name, role: r, members: groups.get(r.id)! })),
    ...(online.length ? [{ title: 'Online', role: null, members: online }] : []),
    ...(offline.length ? [{ title: 'Offline', role: null, members: offline }] : []),
  ];
}

/** The colour of a member's highest coloured role, if any. */
export function memberColor(guild: Pick<GuildState, 'roles'>, m: GuildMember): string | undefined {
  const top = guild.roles
    .filter((r) => r.color && m.roles.includes(r.id))
    .sort((a, b) => b.position - a.position)[0];
  return top ? roleColor(top.color) : undefined;
}

export function GuildMemberList({ guild, onUser }: { guild: GuildState; onUser?: (id: string) => void }) {
  const chat = useChat();
  const presence = usePresence();
  const page = useGuildMembers(guild.id);
  useEffect(() => {
    void chat.guilds.loadMembers(guild.id);
  }, [chat, guild.id]);
  const members = (page?.members ?? []).map((m) => {
    const status = presenceOf(m.user, presence, chat.me.id);
    return { ...m, status, offline: status === 'offline' };
  });
  const groups = groupMembers(guild, members);
  // Kept here, not in a row: a member given a hoisted role moves to another group (a new row).
  const [managing, setManaging] = useState<string | null>(null);
  const managed = page?.members.find((m) => m.user.id === managing);
  return (
    <aside className="members" aria-label="Members">
      {!page && <p className="muted small pad">Loading members…</p>}
      {groups.map((g) => (
        <section key={g.role?.id ?? g.title} aria-label={`${g.title} — ${g.members.length}`}>
          <h2>
            {g.title} — {g.members.length}
          </h2>
          <ul>
            {g.members.map((m) => (
              <GuildMemberRow
                key={m.user.id}
                guild={guild}
                member={m}
                status={members.find((x) => x.user.id === m.user.id)?.status}
                onManage={() => setManaging(m.user.id)}
                onUser={onUser}
              />
            ))}
          </ul>
        </section>
      ))}
      {page && !page.complete && (
        <button className="link pad" onClick={() => void chat.guilds.loadMembers(guild.id, false, true)}>
          Show more members
        </button>
      )}
      {managed && (
        <MemberActionsDialog guildId={guild.id} member={managed} onClose={() => setManaging(null)} />
      )}
    </aside>
  );
}

function GuildMemberRow({
  guild,
  member,
  status,
  onManage,
  onUser,
}: {
  guild: GuildState;
  member: GuildMember;
  status: ReturnType<typeof presenceOf>;
  onManage: () => void;
  onUser?: (id: string) => void;
}) {
  const powers = useMemberPowers(guild, member);
  const may = powers.roles || powers.nick || powers.timeout || powers.kick || powers.ban;
  const name = memberName(member);
  return (
    <li
      className={status === 'offline' ? 'offline' : ''}
      data-user={member.user.username}
      onContextMenu={(e) => {
        if (!may) return;
        e.preventDefault();
        onManage();
      }}
    >
      <button className="member-who" onClick={() => onUser?.(member.user.id)}>
        <Avatar user={member.user} size={32} status={status} />
        <span className="member-name" style={{ color: memberColor(guild, member) }}>
          {name}
          {status && <span className="sr-only">, {statusLabel(status)}</span>}
          {member.user.id === guild.owner_id && <span className="muted small"> (owner)</span>}
          {isTimedOut(member) && <span className="muted small"> (timed out)</span>}
        </span>
      </button>
      {may && (
        <button className="icon small" aria-label={`Manage ${name}`} onClick={onManage}>
          ⋯
        </button>
      )}
    </li>
  );
}
