import { useEffect, useState, type FormEvent } from 'react';
import { useChannels, useChat } from '../../chat/hooks';
import { displayName } from '../../chat/store';
import { useGuildMembers, useMyPermissions } from '../../guilds/hooks';
import { ALL, has, parse, Permission } from '../../guilds/permissions';
import type { GuildState } from '../../guilds/store';
import type { Overwrite } from '../../guilds/types';
import { useAction } from '../dialogs';
import { useConfirm } from '../Confirm';
import { Modal } from '../Modal';
import { OverwritePermissions } from './PermissionEditor';

const VIEW = String(Permission.VIEW_CHANNEL);

/** What someone may hand out in a role or an overwrite (`proto::permissions::Rank::may_not_grant`). */
export function grantableBy(guild: GuildState, mine: bigint, meId: string): bigint {
  return guild.owner_id === meId || has(mine, Permission.ADMINISTRATOR) ? ALL : mine;
}

/** A new text or voice channel, or a category; a private one names the roles that may view it. */
export function CreateGuildChannelDialog({
  guild,
  kind: initialKind,
  parentId,
  onClose,
}: {
  guild: GuildState;
  kind: 'text' | 'voice' | 'category';
  parentId: string | null;
  onClose: () => void;
}) {
  const chat = useChat();
  const [kind, setKind] = useState(initialKind);
  const [name, setName] = useState('');
  const [priv, setPriv] = useState(false);
  const [roles, setRoles] = useState<Set<string>>(new Set());
  const { run, busy, error } = useAction();
  const choosable = guild.roles.filter((r) => r.id !== guild.id).sort((a, b) => b.position - a.position);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      const c = await chat.guilds.createChannel(guild.id, {
        name: name.trim(),
        kind,
        parent_id: kind === 'category' ? null : parentId,
        ...(priv && {
          permission_overwrites: [
            { id: guild.id, type: 0, allow: '0', deny: VIEW },
            ...[...roles].map((id) => ({ id, type: 0, allow: VIEW, deny: '0' })),
          ],
        }),
      });
      onClose();
      if (c.kind !== 'category') window.location.hash = `/c/${c.id}`;
    });
  };
  return (
    <Modal title={kind === 'category' ? 'Create a category' : 'Create a channel'} onClose={onClose}>
      <form className="stack" onSubmit={submit}>
        {initialKind !== 'category' && (
          <fieldset className="row">
            <legend>Channel type</legend>
            <label>
              <input type="radio" name="kind" checked={kind === 'text'} onChange={() => setKind('text')} />{' '}
              Text
            </label>
            <label>
              <input type="radio" name="kind" checked={kind === 'voice'} onChange={() => setKind('voice')} />{' '}
              Voice
            </label>
          </fieldset>
        )}
        <label>
          {kind === 'category' ? 'Category name' : 'Channel name'}
          <input
            name="channel-name"
            required
            maxLength={100}
            value={name}
            onChange={(e) => setName(e.target.value)}
            autoFocus
          />
        </label>
        <label className="row">
          <input type="checkbox" name="private" checked={priv} onChange={(e) => setPriv(e.target.checked)} />
          Private: only the roles chosen (and administrators) may view it
        </label>
        {priv && (
          <fieldset className="stack">
            <legend>Who may view it</legend>
            {choosable.length === 0 && (
              <p className="muted small">No roles yet: only administrators will see it.</p>
            )}
            {choosable.map((r) => (
              <label key={r.id} className="row">
                <input
                  type="checkbox"
                  name={`role-${r.name}`}
                  checked={roles.has(r.id)}
                  onChange={(e) =>
                    setRoles((old) => {
                      const next = new Set(old);
                      if (e.target.checked) next.add(r.id);
                      else next.delete(r.id);
                      return next;
                    })
                  }
                />
                <span style={{ color: roleColor(r.color) }}>{r.name}</span>
              </label>
            ))}
          </fieldset>
        )}
        {error}
        <button className="primary" type="submit" disabled={busy}>
          {kind === 'category' ? 'Create category' : 'Create channel'}
        </button>
      </form>
    </Modal>
  );
}

/** A role's colour as CSS (0: none, the text's own). */
export function roleColor(color: number): string | undefined {
  return color ? `#${color.toString(16).padStart(6, '0')}` : undefined;
}

/** A server channel's settings: name, topic, slowmode; its permission overwrites; delete. */
export function GuildChannelSettings({
  guild,
  channelId,
  onClose,
}: {
  guild: GuildState;
  channelId: string;
  onClose: () => void;
}) {
  const chat = useChat();
  const channel = useChannels().find((c) => c.id === channelId);
  const mine = useMyPermissions(guild.id, channel);
  const members = useGuildMembers(guild.id);
  const [name, setName] = useState(channel?.name ?? '');
  const [topic, setTopic] = useState(channel?.topic ?? '');
  const [slow, setSlow] = useState(channel?.rate_limit_per_user ?? 0);
  const [target, setTarget] = useState<string>(guild.id);
  const save = useAction();
  const perms = useAction();
  const confirm = useConfirm();
  useEffect(() => {
    void chat.guilds.loadMembers(guild.id);
  }, [chat, guild.id]);
  if (!channel) return null;
  const overwrites = channel.permission_overwrites ?? [];
  const grantable = grantableBy(guild, mine, chat.me.id);
  const current: Overwrite = overwrites.find((o) => o.id === target) ?? {
    id: target,
    type: guild.roles.some((r) => r.id === target) ? 0 : 1,
    allow: '0',
    deny: '0',
  };
  const nameOf = (id: string) => {
    const role = guild.roles.find((r) => r.id === id);
    if (role) return role.name;
    const m = members?.members.find((x) => x.user.id === id);
    return m ? (m.nick ?? displayName(m.user)) : `member ${id}`;
  };
  const targets = [
    ...new Set([
      ...[...guild.roles].sort((a, b) => b.position - a.position).map((r) => r.id),
      ...overwrites.filter((o) => o.type === 1).map((o) => o.id),
      ...(members?.members ?? []).map((m) => m.user.id),
    ]),
  ];
  return (
    <Modal
      title={`${channel.kind === 'category' ? 'Category' : 'Channel'} settings: ${channel.name}`}
      onClose={onClose}
      wide
    >
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run(() =>
            chat.guilds.updateChannel(channel.id, {
              name: name.trim(),
              ...(channel.kind === 'text' && { topic: topic.trim() || null, rate_limit_per_user: slow }),
            }),
          );
        }}
      >
        <label>
          Name
          <input
            name="channel-name"
            required
            maxLength={100}
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
        </label>
        {channel.kind === 'text' && (
          <>
            <label>
              Topic
              <input
                name="channel-topic"
                maxLength={1024}
                value={topic}
                onChange={(e) => setTopic(e.target.value)}
              />
            </label>
            <label>
              Slowmode
              <select name="slowmode" value={slow} onChange={(e) => setSlow(Number(e.target.value))}>
                {[0, 5, 10, 30, 60, 300, 900, 3600, 21600].map((s) => (
                  <option key={s} value={s}>
                    {s === 0
                      ? 'Off'
                      : s < 60
                        ? `${s} seconds`
                        : s < 3600
                          ? `${s / 60} minutes`
                          : `${s / 3600} hours`}
                  </option>
                ))}
              </select>
            </label>
          </>
        )}
        {save.error}
        <button
          className="primary"
          type="submit"
          disabled={save.busy || !has(mine, Permission.MANAGE_CHANNELS)}
        >
          Save
        </button>
      </form>
      {has(mine, Permission.MANAGE_ROLES) && (
        <section className="stack top-gap" aria-label="Permissions">
          <h3>Permissions</h3>
          <label>
            For
            <select name="overwrite-target" value={target} onChange={(e) => setTarget(e.target.value)}>
              {targets.map((id) => (
                <option key={id} value={id}>
                  {nameOf(id)}
                  {overwrites.some((o) => o.id === id) ? ' (set)' : ''}
                </option>
              ))}
            </select>
          </label>
          <OverwritePermissions
            allow={parse(current.allow)}
            deny={parse(current.deny)}
            grantable={grantable}
            onChange={(allow, deny) =>
              void perms.run(() =>
                allow === 0n && deny === 0n
                  ? chat.guilds.removeOverwrite(channel.id, current.id)
                  : chat.guilds.setOverwrite(channel.id, {
                      ...current,
                      allow: String(allow),
                      deny: String(deny),
                    }),
              )
            }
          />
          {perms.error}
        </section>
      )}
      {has(mine, Permission.MANAGE_CHANNELS) && (
        <button
          className="danger top-gap"
          onClick={() =>
            confirm.ask({
              title: `Delete ${channel.kind === 'category' ? 'the category' : '#'}${channel.name}?`,
              confirm: `Delete ${channel.kind === 'category' ? 'category' : 'channel'}`,
              onConfirm: () => chat.guilds.deleteChannel(channel.id).then(onClose),
              children: (
                <p>
                  {channel.kind === 'category'
                    ? `${channel.name} is deleted; its channels stay, outside any category.`
                    : `#${channel.name} and all its messages are deleted for everyone. This cannot be undone.`}
                </p>
              ),
            })
          }
        >
          Delete {channel.kind === 'category' ? 'category' : 'channel'}
        </button>
      )}
      {confirm.dialog}
    </Modal>
  );
}
