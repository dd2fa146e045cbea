// Privacy: who may DM me or add me to channels, and the people I block.
import { useEffect, useState, type FormEvent } from 'react';
import type { Audience, UserSettings } from '../api/types';
import { useBlocked, useChat, useSettings } from '../chat/hooks';
import { displayName } from '../chat/store';
import { Avatar } from './Avatar';
import { errorText, Modal } from './Modal';

const AUDIENCES: Array<[Audience, string]> = [
  ['everyone', 'Anyone'],
  ['shared', 'People I share a channel with'],
  ['nobody', 'Nobody'],
];

export function PrivacyDialog({ onClose }: { onClose: () => void }) {
  const chat = useChat();
  const settings = useSettings();
  const blocked = useBlocked();
  const [draft, setDraft] = useState<UserSettings | null>(settings);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    chat
      .loadSettings()
      .then((s) => setDraft((d) => d ?? s))
      .catch((e) => setError(errorText(e)));
  }, [chat]);

  const run = async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    setSaved(false);
    try {
      await fn();
      return true;
    } catch (e) {
      setError(errorText(e));
      return false;
    } finally {
      setBusy(false);
    }
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (draft) void run(() => chat.updateSettings(draft)).then((ok) => setSaved(ok));
  };
  const people = Object.values(blocked).sort((a, b) => displayName(a).localeCompare(displayName(b)));

  return (
    <Modal title="Privacy" onClose={onClose}>
      <form className="stack" onSubmit={submit}>
        {!draft ? (
          <p className="muted">Loading…</p>
        ) : (
          <>
            <label>
              Who can send me direct messages
              <select
                name="allow-dms-from"
                value={draft.allow_dms_from}
                onChange={(e) => setDraft({ ...draft, allow_dms_from: e.target.value as Audience })}
              >
                {AUDIENCES.map(([value, label]) => (
                  <option key={value} value={value}>
                    {label}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Who can add me to channels
              <select
                name="allow-channel-adds-from"
                value={draft.allow_channel_adds_from}
                onChange={(e) => setDraft({ ...draft, allow_channel_adds_from: e.target.value as Audience })}
              >
                {AUDIENCES.map(([value, label]) => (
                  <option key={value} value={value}>
                    {label}
                  </option>
                ))}
              </select>
            </label>
            <p className="muted small">
              "People I share a channel with" includes anyone whose direct message you have opened. Someone
              who messages you first sees whether you are online only once you open their message.
            </p>
          </>
        )}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        {saved && (
          <p className="ok" role="status">
            Saved.
          </p>
        )}
        <button className="primary" type="submit" disabled={busy || !draft}>
          Save privacy settings
        </button>
      </form>
      <section className="stack top-gap" aria-labelledby="blocked-title">
        <h3 id="blocked-title">Blocked</h3>
        {people.length === 0 ? (
          <p className="muted small">You block nobody. Block someone from the member list.</p>
        ) : (
          <ul className="member-manage">
            {people.map((u) => (
              <li key={u.id}>
                <Avatar user={u} size={24} />
                <span>
                  {displayName(u)} <span className="muted small">@{u.username}</span>
                </span>
                <button
                  className="small"
                  aria-label={`Unblock ${u.username}`}
                  disabled={busy}
                  onClick={() => void run(() => chat.unblock(u.id))}
                >
                  Unblock
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>
    </Modal>
  );
}
