// Discord's bell: what a server and one of its channels (or a DM) tell me of, and mutes. Every
// change is saved at once through auth's PATCH; the answer, and USER_GUILD_SETTINGS_UPDATE on my
// other devices, update the lists.
import { useState } from 'react';
import type { Channel, ChannelOverride, UpdateUserGuildSettingsRequest } from '../api/types';
import { useChat } from '../chat/hooks';
import { channelTitle } from '../chat/store';
import { useGuilds } from '../guilds/hooks';
import { errorText, Modal } from '../ui/Modal';
import { useNotifySettings } from './hooks';
import {
  defaultSettings,
  Level,
  muteActive,
  muteConfig,
  muteText,
  MUTE_CHOICES,
  settingsKey,
  type LevelValue,
} from './rules';

const LEVELS: Array<[LevelValue, string]> = [
  [Level.All, 'All messages'],
  [Level.Mentions, 'Only @mentions'],
  [Level.Nothing, 'Nothing'],
];

function LevelChoice({
  name,
  legend,
  value,
  inherit,
  onChange,
  disabled,
}: {
  name: string;
  legend: string;
  value: LevelValue;
  /** Offer "follow the server" (a channel override's 3). */
  inherit?: string;
  onChange: (v: LevelValue) => void;
  disabled: boolean;
}) {
  const choices: Array<[LevelValue, string]> = inherit ? [[Level.Inherit, inherit], ...LEVELS] : LEVELS;
  return (
    <fieldset className="choices">
      <legend>{legend}</legend>
      {choices.map(([v, label]) => (
        <label key={v} className="check">
          <input
            type="radio"
            name={name}
            checked={value === v}
            disabled={disabled}
            onChange={() => onChange(v)}
          />
          {label}
        </label>
      ))}
    </fieldset>
  );
}

/** Mute buttons (15 min … until I turn it back on), or the mute and its Unmute button. */
function MuteControl({
  what,
  muted,
  config,
  onMute,
  disabled,
}: {
  what: string;
  muted: boolean;
  config: { end_time?: string | null } | null | undefined;
  onMute: (minutes: number | null | false) => void;
  disabled: boolean;
}) {
  if (muted)
    return (
      <div className="row mute-state">
        <span className="muted-note" role="status">
          {muteText(config)}
        </span>
        <button className="small" disabled={disabled} onClick={() => onMute(false)}>
          Unmute {what}
        </button>
      </div>
    );
  return (
    <div className="mute-choices" role="group" aria-label={`Mute ${what}`}>
      <span className="muted small">Mute {what}:</span>
      {MUTE_CHOICES.map((c) => (
        <button
          key={c.label}
          className="small"
          disabled={disabled}
          aria-label={`Mute ${what} ${c.label.toLowerCase()}`}
          onClick={() => onMute(c.minutes)}
        >
          {c.label}
        </button>
      ))}
    </div>
  );
}

/**
 * The notification settings of a server (`guildId`) and, when opened from a channel, of that
 * channel; for a DM or group channel (`guildId` null) the channel's only.
 */
export function NotificationSettingsDialog({
  guildId,
  channel,
  onClose,
}: {
  guildId: string | null;
  channel?: Channel;
  onClose: () => void;
}) {
  const chat = useChat();
  const all = useNotifySettings();
  const guild = useGuilds().find((g) => g.id === guildId);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const now = Date.now();
  const current = all[settingsKey(guildId)] ?? defaultSettings(guildId, guild?.member_count ?? 0);
  const over: ChannelOverride | undefined = channel
    ? (current.channel_overrides.find((o) => o.channel_id === channel.id) ?? {
        channel_id: channel.id,
        message_notifications: Level.Inherit,
        muted: false,
        mute_config: null,
      })
    : undefined;

  const save = (patch: UpdateUserGuildSettingsRequest) => {
    setBusy(true);
    setError(null);
    chat.notifications
      .update(guildId, patch)
      .catch((e) => setError(errorText(e)))
      .finally(() => setBusy(false));
  };
  const saveOverride = (change: Partial<ChannelOverride>) => {
    if (!over) return;
    save({
      channel_overrides: [
        {
          channel_id: over.channel_id,
          message_notifications: over.message_notifications ?? Level.Inherit,
          muted: over.muted ?? false,
          mute_config: over.mute_config ?? null,
          ...change,
        },
      ],
    });
  };
  const mute = (minutes: number | null | false) =>
    minutes === false
      ? { muted: false, mute_config: null }
      : { muted: true, mute_config: muteConfig(minutes, now) };

  const channelName = channel
    ? channel.kind === 'dm'
      ? channelTitle(channel)
      : `#${channelTitle(channel)}`
    : '';
  const title = channel ? `Notifications: ${channelName}` : `Notifications: ${guild?.name ?? 'server'}`;
  return (
    <Modal title={title} onClose={onClose}>
      <div className="stack notification-settings">
        {channel && over && (
          <section className="stack" aria-label={`${channelName} notifications`}>
            <LevelChoice
              name="channel-level"
              legend={`Notify me in ${channelName} of`}
              value={(over.message_notifications ?? Level.Inherit) as LevelValue}
              inherit={guildId ? 'Follow the server' : 'Every message (the default)'}
              disabled={busy}
              onChange={(v) => saveOverride({ message_notifications: v })}
            />
            <MuteControl
              what={channelName}
              muted={muteActive(over.muted, over.mute_config, now)}
              config={over.mute_config}
              disabled={busy}
              onMute={(m) => saveOverride(mute(m))}
            />
            <p className="muted small">
              {guildId
                ? 'A muted channel tells you only of @mentions, and looks muted in the list.'
                : 'A muted conversation tells you of nothing.'}
            </p>
          </section>
        )}
        {guildId && (
          <section className="stack" aria-label={`${guild?.name ?? 'Server'} notifications`}>
            <h3>{guild?.name ?? 'This server'}</h3>
            <LevelChoice
              name="guild-level"
              legend="Notify me in this server of"
              value={current.message_notifications as LevelValue}
              disabled={busy}
              onChange={(v) => save({ message_notifications: v })}
            />
            <MuteControl
              what={guild?.name ?? 'this server'}
              muted={muteActive(current.muted, current.mute_config, now)}
              config={current.mute_config}
              disabled={busy}
              onMute={(m) => save(mute(m))}
            />
            <label className="check">
              <input
                type="checkbox"
                checked={current.suppress_everyone}
                disabled={busy}
                onChange={(e) => save({ suppress_everyone: e.target.checked })}
              />
              Suppress @everyone and @here
            </label>
            <label className="check">
              <input
                type="checkbox"
                checked={current.suppress_roles}
                disabled={busy}
                onChange={(e) => save({ suppress_roles: e.target.checked })}
              />
              Suppress all role @mentions
            </label>
          </section>
        )}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
      </div>
    </Modal>
  );
}
