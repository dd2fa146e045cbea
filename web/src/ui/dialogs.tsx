import { lazy, Suspense, useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { call } from '../api/rest';
import type { Channel, Status } from '../api/types';
import { session } from '../auth/session';
import { useChannels, useChat, useMembers, useUsers } from '../chat/hooks';
import { displayName } from '../chat/store';
import { Avatar } from './Avatar';
import { useConfirm } from './Confirm';
import { leaveGroup, removeFromGroup } from './MemberList';
import type { CropDialogProps } from './CropDialog';
import { errorText, Modal } from './Modal';

const CropDialog = lazy(() => import('./CropDialog'));

/** The crop step (CropDialog.tsx), loaded the first time an image is chosen. */
export function CropStep(props: CropDialogProps) {
  return (
    <Suspense
      fallback={
        <p className="muted small" role="status">
          Opening the image…
        </p>
      }
    >
      <CropDialog {...props} />
    </Suspense>
  );
}

/** Image types media takes for avatars and icons. */
const IMAGE_TYPES = 'image/png,image/jpeg,image/gif,image/webp';

/**
 * An avatar's or icon's picture beside a file input for a new one: a chosen file goes to
 * `onFile` (the crop step), and the input is emptied so the same file may be chosen again.
 */
export function ImagePicker({
  label,
  name,
  preview,
  onFile,
}: {
  label: string;
  name: string;
  preview: ReactNode;
  onFile: (file: File) => void;
}) {
  return (
    <div className="row">
      {preview}
      <label className="grow">
        {label}
        <input
          name={name}
          type="file"
          accept={IMAGE_TYPES}
          onChange={(e) => {
            const file = e.target.files?.[0];
            e.target.value = '';
            if (file) onFile(file);
          }}
        />
      </label>
    </div>
  );
}

export function useAction() {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  const shown = error ? (
    <p className="form-error" role="alert">
      {error}
    </p>
  ) : null;
  return { run, busy, error: shown };
}

export function CreateChannelDialog({
  onClose,
  onCreated,
}: {
  onClose: () => void;
  onCreated: (c: Channel) => void;
}) {
  const chat = useChat();
  const [name, setName] = useState('');
  const [topic, setTopic] = useState('');
  const { run, busy, error } = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => onCreated(await chat.createChannel(name.trim(), topic.trim() || undefined)));
  };
  return (
    <Modal title="Create a channel" onClose={onClose}>
      <form onSubmit={submit} className="stack">
        <label>
          Name
          <input
            name="channel-name"
            required
            maxLength={100}
            value={name}
            onChange={(e) => setName(e.target.value)}
            autoFocus
          />
        </label>
        <label>
          Topic <span className="muted">(optional)</span>
          <input
            name="channel-topic"
            maxLength={1024}
            value={topic}
            onChange={(e) => setTopic(e.target.value)}
          />
        </label>
        {error}
        <button className="primary" type="submit" disabled={busy}>
          Create channel
        </button>
      </form>
    </Modal>
  );
}

export function NewDmDialog({ onClose, onOpened }: { onClose: () => void; onOpened: (c: Channel) => void }) {
  const chat = useChat();
  const [username, setUsername] = useState('');
  const { run, busy, error } = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => onOpened(await chat.openDm(username.trim().toLowerCase())));
  };
  return (
    <Modal title="Start a direct message" onClose={onClose}>
      <form onSubmit={submit} className="stack">
        <label>
          Username
          <input
            name="dm-username"
            required
            autoCapitalize="none"
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            autoFocus
          />
        </label>
        {error}
        <button className="primary" type="submit" disabled={busy}>
          Open conversation
        </button>
      </form>
    </Modal>
  );
}

export function ChannelSettingsDialog({ channelId, onClose }: { channelId: string; onClose: () => void }) {
  const chat = useChat();
  const channel = useChannels().find((c) => c.id === channelId);
  const [name, setName] = useState(channel?.name ?? '');
  const [topic, setTopic] = useState(channel?.topic ?? '');
  const [newMember, setNewMember] = useState('');
  const { run, busy, error } = useAction();
  const confirm = useConfirm();
  const page = useMembers(channelId);
  useEffect(() => {
    void chat.loadMembers(channelId);
  }, [chat, channelId]);
  if (!channel) return null;
  const myRole = channel.role ?? 'member';
  const members = page?.members ?? [];
  const moderates = myRole !== 'member';
  const owner = myRole === 'owner';

  return (
    <Modal title={`Channel settings: ${channel.name ?? ''}`} onClose={onClose}>
      <div className="stack">
        {moderates && (
          <form
            className="stack"
            onSubmit={(e) => {
              e.preventDefault();
              void run(() =>
                chat.updateChannel(channel.id, { name: name.trim(), topic: topic.trim() || null }),
              );
            }}
          >
            <label>
              Name
              <input name="rename" value={name} maxLength={100} onChange={(e) => setName(e.target.value)} />
            </label>
            <label>
              Topic
              <input name="topic" value={topic} maxLength={1024} onChange={(e) => setTopic(e.target.value)} />
            </label>
            <button type="submit" disabled={busy}>
              Save
            </button>
          </form>
        )}
        <section aria-labelledby="members-title">
          <h3 id="members-title">Members ({channel.member_count})</h3>
          <ul className="member-manage">
            {members.map((m) => (
              <li key={m.user.id}>
                <Avatar user={m.user} size={24} />
                <span>
                  {displayName(m.user)} <span className="muted small">@{m.user.username}</span>
                </span>
                {m.role !== 'member' && <span className="role">{m.role}</span>}
                {moderates &&
                  m.user.id !== chat.me.id &&
                  m.role !== 'owner' &&
                  (owner || m.role === 'member') && (
                    <button
                      className="danger small"
                      aria-label={`Remove ${m.user.username}`}
                      onClick={() => confirm.ask(removeFromGroup(chat, channel, m.user))}
                    >
                      Remove
                    </button>
                  )}
              </li>
            ))}
          </ul>
          {page && !page.complete && (
            <button className="link" onClick={() => void chat.loadMembers(channel.id, true)}>
              Show more members
            </button>
          )}
          {moderates && (
            <form
              className="row"
              onSubmit={(e) => {
                e.preventDefault();
                void run(async () => {
                  await chat.addMember(channel.id, newMember.trim().toLowerCase());
                  setNewMember('');
                });
              }}
            >
              <label className="grow">
                <span className="sr-only">Username to add</span>
                <input
                  name="add-member"
                  placeholder="Add someone by username"
                  value={newMember}
                  onChange={(e) => setNewMember(e.target.value)}
                />
              </label>
              <button type="submit" disabled={busy || !newMember.trim()}>
                Add
              </button>
            </form>
          )}
        </section>
        {error}
        <div className="row">
          <button className="danger" onClick={() => confirm.ask(leaveGroup(chat, channel))}>
            Leave channel
          </button>
          {owner && (
            <button
              className="danger"
              onClick={() =>
                confirm.ask({
                  title: `Delete #${channel.name}?`,
                  confirm: 'Delete channel',
                  onConfirm: () => chat.deleteChannel(channel.id),
                  children: (
                    <p>
                      #{channel.name} and all its messages are deleted for everyone in it. This cannot be
                      undone.
                    </p>
                  ),
                })
              }
            >
              Delete channel
            </button>
          )}
        </div>
      </div>
      {confirm.dialog}
    </Modal>
  );
}

const STATUSES: Array<[Exclude<Status, 'offline'>, string]> = [
  ['online', 'Online'],
  ['idle', 'Idle'],
  ['dnd', 'Do not disturb'],
  ['invisible', 'Invisible'],
];

export function ProfileDialog({ onClose }: { onClose: () => void }) {
  const chat = useChat();
  const me = useUsers()[chat.me.id] ?? session.user ?? chat.me;
  const [displayNameValue, setDisplayName] = useState(me.display_name ?? '');
  const [avatarUrl, setAvatarUrl] = useState(me.avatar_url ?? '');
  const [bio, setBio] = useState(me.bio ?? '');
  const [status, setStatus] = useState<Status>(me.status);
  const [saved, setSaved] = useState(false);
  /** The image chosen for the avatar, while the crop step is open. */
  const [cropping, setCropping] = useState<File | null>(null);
  const [permission, setPermission] = useState(
    typeof Notification === 'undefined' ? 'unsupported' : Notification.permission,
  );
  const { run, busy, error } = useAction();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    void run(async () => {
      await chat.updateProfile({
        display_name: displayNameValue.trim() || null,
        // Sent only when changed: an avatar kept from before (on another site, which auth no
        // longer accepts) must not stop the rest of the profile from saving.
        ...(avatarUrl.trim() !== (me.avatar_url ?? '') && { avatar_url: avatarUrl.trim() || null }),
        bio: bio.trim() || null,
        status,
      });
      setSaved(true);
    });
  };

  return (
    <Modal title="Your profile" onClose={onClose}>
      <form className="stack" onSubmit={submit}>
        <p className="muted">@{me.username}</p>
        <label>
          Display name
          <input
            name="display-name"
            maxLength={32}
            value={displayNameValue}
            onChange={(e) => setDisplayName(e.target.value)}
          />
        </label>
        <ImagePicker
          label="Avatar image"
          name="avatar-file"
          preview={<Avatar user={{ ...me, avatar_url: avatarUrl || null }} size={64} />}
          onFile={setCropping}
        />
        {avatarUrl && (
          <button type="button" className="link" onClick={() => setAvatarUrl('')}>
            Remove the avatar (on save)
          </button>
        )}
        <label>
          Bio
          <textarea
            name="bio"
            maxLength={190}
            rows={3}
            value={bio}
            onChange={(e) => setBio(e.target.value)}
          />
        </label>
        <label>
          Status
          <select name="status" value={status} onChange={(e) => setStatus(e.target.value as Status)}>
            {STATUSES.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
        {error}
        {saved && (
          <p className="ok" role="status">
            Saved.
          </p>
        )}
        <button className="primary" type="submit" disabled={busy}>
          Save profile
        </button>
      </form>
      <div className="stack top-gap">
        {permission === 'default' && (
          <button onClick={() => void Notification.requestPermission().then(setPermission)}>
            Notify me of direct messages
          </button>
        )}
        {permission === 'granted' && (
          <p className="muted small">Desktop notifications for direct messages are on.</p>
        )}
        <button
          className="danger"
          onClick={() =>
            void run(async () => {
              try {
                await call('/api/v1/auth/sign-out', { method: 'POST' });
              } finally {
                session.signedOutElsewhere();
              }
            })
          }
        >
          Sign out
        </button>
      </div>
      {/* Outside the form: the crop dialog's buttons must not submit the profile. */}
      {cropping && (
        <CropStep
          image={cropping}
          title="Crop your avatar"
          round
          onClose={() => setCropping(null)}
          onApply={async (cropped) => {
            setSaved(false);
            const u = await chat.uploadAvatar(cropped);
            setAvatarUrl(u.avatar_url ?? '');
            setCropping(null);
            setSaved(true);
          }}
        />
      )}
    </Modal>
  );
}
