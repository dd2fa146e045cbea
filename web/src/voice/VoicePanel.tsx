// Voice on screen: who is in a voice channel (in the channel list and its pane), joining and
// leaving, mute, deafen, camera and screen, a grid of participants with speaking indicators,
// device pickers, a clear message when joining is refused or the media server cannot be reached,
// and a call button with ringing in DMs and group channels.

import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { call } from '../api/rest';
import { useCached, useChat } from '../chat/hooks';
import { displayName, type UserMap } from '../chat/store';
import { keys } from '../chat/keys';
import type { Tile, VoiceSnapshot } from './store';

export function useVoice(): VoiceSnapshot {
  const chat = useChat();
  return useSyncExternalStore(chat.voice.subscribe, chat.voice.snapshot);
}

/** The names of who is in `channelId`, fetching profiles the client has not met. */
function usePeople(channelId: string): { id: string; name: string; speaking: boolean; muted: boolean }[] {
  const chat = useChat();
  const voice = useVoice();
  const users = useCached<UserMap>(keys.users, {});
  const here = [...voice.states.values()].filter((s) => s.channel_id === channelId);
  const ids = here.map((s) => s.user_id);
  const missing = ids.filter((id) => !users[id]).join(',');
  useEffect(() => {
    if (missing) void chat.ensureUsers(missing.split(','));
  }, [chat, missing]);
  const tiles = voice.call?.channelId === channelId ? voice.call.tiles : [];
  return here.map((s) => ({
    id: s.user_id,
    name: displayName(users[s.user_id]),
    speaking: tiles.some((t) => t.identity === s.user_id && t.speaking),
    muted: !!(s.self_mute || s.mute),
  }));
}

/** Under a voice channel in the list: who is in it, live. */
export function VoiceChannelMembers({ channelId }: { channelId: string }) {
  const people = usePeople(channelId);
  if (people.length === 0) return null;
  return (
    <ul className="voice-members" aria-label="In this voice channel">
      {people.map((p) => (
        <li key={p.id} className={p.speaking ? 'speaking' : undefined} data-voice-user={p.id}>
          {p.name}
          {p.muted && <span className="muted small"> (muted)</span>}
        </li>
      ))}
    </ul>
  );
}

function Video({ track, label }: { track: MediaStreamTrack; label: string }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    if (ref.current) ref.current.srcObject = new MediaStream([track]);
  }, [track]);
  return <video ref={ref} autoPlay playsInline muted aria-label={label} />;
}

function TileView({ tile, name }: { tile: Tile; name: string }) {
  return (
    <figure
      className={`voice-tile ${tile.speaking ? 'speaking' : ''}`}
      data-identity={tile.identity}
      data-speaking={tile.speaking ? 'true' : 'false'}
    >
      {tile.screen && <Video track={tile.screen} label={`${name}'s screen`} />}
      {tile.camera && <Video track={tile.camera} label={`${name}'s camera`} />}
      <figcaption>
        {name}
        {tile.local && ' (you)'}
        {tile.muted && ' · muted'}
      </figcaption>
    </figure>
  );
}

function DevicePicker({ kind, label }: { kind: MediaDeviceKind; label: string }) {
  const chat = useChat();
  const [devices, setDevices] = useState<MediaDeviceInfo[]>([]);
  useEffect(() => {
    void chat.voice.devices(kind).then(setDevices);
  }, [chat, kind]);
  if (devices.length === 0) return null;
  return (
    <label className="device-picker">
      {label}{' '}
      <select onChange={(e) => void chat.voice.useDevice(kind, e.target.value)}>
        {devices.map((d) => (
          <option key={d.deviceId} value={d.deviceId}>
            {d.label || d.deviceId}
          </option>
        ))}
      </select>
    </label>
  );
}

/** The call's controls and grid, for the channel the call is in. */
function CallView() {
  const chat = useChat();
  const voice = useVoice();
  const users = useCached<UserMap>(keys.users, {});
  const call = voice.call;
  if (!call) return null;
  const name = (id: string) => displayName(users[id]);
  return (
    <div className="voice-call" data-call-status={call.status}>
      <p className="muted" role="status">
        {call.status === 'joining' && 'Joining…'}
        {call.status === 'connecting' && 'Connecting to the media server…'}
        {call.status === 'connected' && 'Connected.'}
      </p>
      {call.error && (
        <p className="error" role="alert">
          {call.error}
        </p>
      )}
      <div className="voice-controls" role="toolbar" aria-label="Call controls">
        <button aria-pressed={call.selfMute} onClick={() => void chat.voice.toggleMute()}>
          {call.selfMute ? 'Unmute' : 'Mute'}
        </button>
        <button aria-pressed={call.selfDeaf} onClick={() => chat.voice.toggleDeaf()}>
          {call.selfDeaf ? 'Undeafen' : 'Deafen'}
        </button>
        <button
          aria-pressed={call.camera}
          disabled={call.status !== 'connected'}
          onClick={() => void chat.voice.toggleCamera()}
        >
          {call.camera ? 'Stop camera' : 'Camera'}
        </button>
        <button
          aria-pressed={call.screen}
          disabled={call.status !== 'connected'}
          onClick={() => void chat.voice.toggleScreen()}
        >
          {call.screen ? 'Stop sharing' : 'Share screen'}
        </button>
        <button className="danger" onClick={() => chat.voice.leave()}>
          Leave
        </button>
      </div>
      {call.status === 'connected' && (
        <div className="voice-devices">
          <label className="device-picker">
            <input
              type="checkbox"
              checked={call.pushToTalk}
              onChange={(e) => void chat.voice.setPushToTalk(e.target.checked)}
            />{' '}
            Push to talk (hold Space){call.pushToTalk && call.talking && ' · talking'}
          </label>
          <DevicePicker kind="audioinput" label="Microphone" />
          <DevicePicker kind="audiooutput" label="Speaker" />
          <DevicePicker kind="videoinput" label="Camera" />
        </div>
      )}
      <div className="voice-grid" aria-label="Participants">
        {call.tiles.map((t) => (
          <TileView key={t.identity} tile={t} name={name(t.identity)} />
        ))}
      </div>
    </div>
  );
}

/** A voice channel's pane, or a DM's or group's call: who is in it, and joining. */
export function VoicePane({
  guildId,
  channelId,
  title,
}: {
  guildId: string | null;
  channelId: string;
  title: string;
}) {
  const chat = useChat();
  const voice = useVoice();
  const people = usePeople(channelId);
  const inThis = voice.call?.channelId === channelId;
  return (
    <section className="conversation voice-pane" aria-label={`Voice channel ${title}`}>
      <div className="empty-state">
        <h2>{title}</h2>
        {people.length === 0 ? (
          <p className="muted">Nobody is in this voice channel.</p>
        ) : (
          <ul className="voice-members" aria-label="In this voice channel">
            {people.map((p) => (
              <li key={p.id} data-voice-user={p.id} className={p.speaking ? 'speaking' : undefined}>
                {p.name}
              </li>
            ))}
          </ul>
        )}
        {!inThis && (
          <button className="primary" onClick={() => chat.voice.join(guildId, channelId)}>
            Join voice
          </button>
        )}
        {voice.notice && !inThis && (
          <p className="error" role="alert">
            {voice.notice}
          </p>
        )}
      </div>
      {inThis && <CallView />}
    </section>
  );
}

/** In a DM or group channel: the call button, and ringing when someone else is in its call. */
export function CallBar({ channelId }: { channelId: string }) {
  const chat = useChat();
  const voice = useVoice();
  const people = usePeople(channelId);
  const [declined, setDeclined] = useState(false);
  const inThis = voice.call?.channelId === channelId;
  const others = people.filter((p) => p.id !== chat.me.id);
  useEffect(() => {
    if (others.length === 0) setDeclined(false);
  }, [others.length]);
  if (inThis) return <CallView />;
  if (others.length > 0 && !declined) {
    return (
      <div className="call-ringing" role="alert" aria-label="Incoming call">
        <span>{others.map((p) => p.name).join(', ')} is calling…</span>{' '}
        <button className="primary" onClick={() => chat.voice.join(null, channelId)}>
          Join call
        </button>{' '}
        <button
          onClick={() => {
            setDeclined(true);
            // The server stops ringing; when nobody answered, the call ends as a missed call.
            void call(`/api/v1/channels/${channelId}/call/stop-ringing`, { method: 'POST', body: {} }).catch(
              () => undefined,
            );
          }}
        >
          Decline
        </button>
      </div>
    );
  }
  return (
    <button className="call-start" onClick={() => chat.voice.join(null, channelId)}>
      Start a call
    </button>
  );
}
