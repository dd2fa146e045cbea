// Voice and video on the client: who is in which voice channel or call (VOICE_STATE_UPDATE, and
// READY's servers' `voice_states`), and this tab's own call through livekit-client.
//
// Joining sends op 4; the edge answers VOICE_SERVER_UPDATE (the media server's URL and a token
// whose grants follow the user's permissions) or an ERROR naming what is missing. Media never
// crosses Natter: the tab connects to the media server (LiveKit) with that token. A voice state
// lasts as long as the gateway connection that joined, so after a reconnect the tab joins again.
// livekit-client is loaded when a call starts, so the page loads no faster or slower for voice.

import type {
  LocalTrackPublication,
  Participant,
  RemoteAudioTrack,
  RemoteTrack,
  DisconnectReason,
  Room,
  Track,
} from 'livekit-client';
import type { GatewayClient } from '../gateway/client';
import { Op, type Ready, type Resumed, type VoiceServerUpdate, type VoiceState } from '../api/types';

export type CallStatus = 'idle' | 'joining' | 'connecting' | 'connected' | 'failed';

/** Someone in this tab's call, as the grid shows them. */
export interface Tile {
  identity: string;
  local: boolean;
  speaking: boolean;
  muted: boolean;
  camera?: MediaStreamTrack;
  screen?: MediaStreamTrack;
}

export interface Call {
  guildId: string | null;
  channelId: string;
  status: CallStatus;
  /** Why it failed or was refused, for people. */
  error: string | null;
  selfMute: boolean;
  selfDeaf: boolean;
  camera: boolean;
  screen: boolean;
  /** The microphone is live only while Space is held. */
  pushToTalk: boolean;
  /** Space is held (push to talk). */
  talking: boolean;
  tiles: Tile[];
}

export interface VoiceSnapshot {
  /** Each user's voice state, by user id. */
  states: ReadonlyMap<string, VoiceState>;
  call: Call | null;
  /** An op 4 refused or a media server unreachable when no call is kept (shown once). */
  notice: string | null;
}

type LiveKit = typeof import('livekit-client');
let loading: Promise<LiveKit> | null = null;
/** livekit-client, loaded once on first use. */
function livekit(): Promise<LiveKit> {
  loading ??= import('livekit-client');
  return loading;
}

/** How long joining may take before the media server counts as unreachable. */
const CONNECT_TIMEOUT_MS = 20_000;

/** Options a test (or an operator's setting) may force: TURN only. */
export interface VoiceOptions {
  iceTransportPolicy?: RTCIceTransportPolicy;
}

export class Voice {
  private states = new Map<string, VoiceState>();
  private call: Call | null = null;
  private notice: string | null = null;
  private room: Room | null = null;
  private listeners = new Set<() => void>();
  private snap: VoiceSnapshot = { states: this.states, call: null, notice: null };
  private audio = document.createElement('div');
  private unsubscribe: (() => void)[] = [];

  constructor(
    private readonly gateway: GatewayClient,
    private readonly me: string,
    private readonly options: VoiceOptions = {},
  ) {
    this.audio.hidden = true;
    this.audio.dataset.voiceAudio = '';
    document.body.appendChild(this.audio);
    this.unsubscribe.push(
      gateway.on('ready', (r) => this.onReady(r)),
      gateway.on('resumed', (r) => this.onResumed(r)),
      gateway.on('dispatch', ({ t, d }) => this.onDispatch(t, d)),
      gateway.on('error', (e) => this.onError(e)),
    );
  }

  stop() {
    this.unsubscribe.forEach((u) => u());
    void this.room?.disconnect();
    this.audio.remove();
  }

  subscribe = (fn: () => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  snapshot = () => this.snap;

  /** The room, for tests that read WebRTC stats. */
  get currentRoom(): Room | null {
    return this.room;
  }

  private changed() {
    this.snap = { states: new Map(this.states), call: this.call && { ...this.call }, notice: this.notice };
    this.listeners.forEach((fn) => fn());
  }

  /** Who is in `channelId` now, in user-id order. */
  inChannel(channelId: string): VoiceState[] {
    return [...this.states.values()].filter((s) => s.channel_id === channelId);
  }

  // ---- gateway -----------------------------------------------------------------------------

  private onReady(ready: Ready) {
    this.states.clear();
    for (const g of ready.guilds ?? []) for (const s of g.voice_states ?? []) this.states.set(s.user_id, s);
    for (const s of ready.voice_states ?? []) this.states.set(s.user_id, s);
    this.rejoin();
    this.changed();
  }

  private onResumed(_: Resumed) {
    this.rejoin();
  }

  /** A new gateway connection: the old one's voice state went with it, so join again. */
  private rejoin() {
    if (this.call && this.call.status !== 'failed') this.sendState();
  }

  private onDispatch(t: string, d: unknown) {
    if (t === 'VOICE_STATE_UPDATE') {
      const s = d as VoiceState;
      if (s.channel_id) this.states.set(s.user_id, s);
      else this.states.delete(s.user_id);
      // A moderator disconnected me, or I lost the right to be there.
      // (Once the server has answered the join: a leave's own echo may still arrive while joining.)
      const answered = this.call?.status === 'connecting' || this.call?.status === 'connected';
      if (s.user_id === this.me && !s.channel_id && this.call && answered) {
        const room = this.room;
        this.room = null;
        void room?.disconnect();
        this.call = null;
        this.notice = 'You were disconnected from voice.';
      }
      this.changed();
    } else if (t === 'VOICE_SERVER_UPDATE') {
      void this.connect(d as VoiceServerUpdate);
    } else if (t === 'GUILD_DELETE') {
      const id = (d as { id: string }).id;
      for (const [user, s] of this.states) if (s.guild_id === id) this.states.delete(user);
      this.changed();
    }
  }

  private onError(e: { code: string; message: string }) {
    if (!this.call || this.call.status !== 'joining') return;
    const text =
      e.code === 'forbidden'
        ? `You cannot join this voice channel: ${e.message}.`
        : e.code === 'service_unavailable'
          ? `Voice is unavailable: ${e.message}.`
          : e.message;
    this.call = { ...this.call, status: 'failed', error: text };
    this.changed();
  }

  // ---- actions -----------------------------------------------------------------------------

  join(guildId: string | null, channelId: string) {
    void this.room?.disconnect();
    this.room = null;
    this.notice = null;
    this.call = {
      guildId,
      channelId,
      status: 'joining',
      error: null,
      selfMute: false,
      selfDeaf: false,
      camera: false,
      screen: false,
      pushToTalk: false,
      talking: false,
      tiles: [],
    };
    this.sendState();
    this.changed();
  }

  /** Push to talk: the microphone opens only while Space is held (outside text fields). */
  async setPushToTalk(on: boolean) {
    if (!this.call) return;
    this.call.pushToTalk = on;
    this.call.talking = false;
    if (on) {
      window.addEventListener('keydown', this.onKey);
      window.addEventListener('keyup', this.onKey);
    } else {
      window.removeEventListener('keydown', this.onKey);
      window.removeEventListener('keyup', this.onKey);
    }
    await this.applyMicrophone();
    this.refresh();
  }

  private onKey = (e: KeyboardEvent) => {
    if (e.code !== 'Space' || !this.call?.pushToTalk || e.repeat) return;
    const target = e.target as HTMLElement | null;
    if (target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA' || target.isContentEditable))
      return;
    e.preventDefault();
    this.call.talking = e.type === 'keydown';
    void this.applyMicrophone().then(() => this.refresh());
  };

  /** Opens or closes the microphone as mute and push to talk say. */
  private async applyMicrophone() {
    const c = this.call;
    if (!c || !this.room) return;
    const open = !c.selfMute && !c.selfDeaf && (!c.pushToTalk || c.talking);
    await this.room.localParticipant.setMicrophoneEnabled(open).catch(() => undefined);
  }

  leave() {
    if (this.call?.pushToTalk) void this.setPushToTalk(false);
    const call = this.call;
    this.call = null;
    const room = this.room;
    this.room = null;
    void room?.disconnect();
    if (call) this.gateway.notify(Op.VoiceStateUpdate, { guild_id: call.guildId, channel_id: null });
    this.changed();
  }

  async toggleMute() {
    if (!this.call) return;
    this.call.selfMute = !this.call.selfMute;
    await this.applyMicrophone();
    this.sendState();
    this.refresh();
  }

  toggleDeaf() {
    if (!this.call) return;
    this.call.selfDeaf = !this.call.selfDeaf;
    this.applyDeaf();
    // Deafened is muted too, as in Discord.
    void this.applyMicrophone();
    this.sendState();
    this.refresh();
  }

  async toggleCamera() {
    if (!this.call || !this.room) return;
    const on = !this.call.camera;
    try {
      await this.room.localParticipant.setCameraEnabled(on);
      this.call.camera = on;
    } catch (e) {
      this.call.error = `The camera cannot be turned on: ${(e as Error).message}`;
    }
    this.sendState();
    this.refresh();
  }

  async toggleScreen() {
    if (!this.call || !this.room) return;
    const on = !this.call.screen;
    try {
      await this.room.localParticipant.setScreenShareEnabled(on);
      this.call.screen = on;
    } catch (e) {
      this.call.error = `The screen cannot be shared: ${(e as Error).message}`;
    }
    this.sendState();
    this.refresh();
  }

  async devices(kind: MediaDeviceKind): Promise<MediaDeviceInfo[]> {
    const lk = await livekit();
    return lk.Room.getLocalDevices(kind).catch(() => []);
  }

  async useDevice(kind: MediaDeviceKind, deviceId: string) {
    await this.room?.switchActiveDevice(kind, deviceId).catch(() => undefined);
  }

  private sendState() {
    const c = this.call;
    if (!c) return;
    this.gateway.notify(Op.VoiceStateUpdate, {
      guild_id: c.guildId,
      channel_id: c.channelId,
      self_mute: c.selfMute,
      self_deaf: c.selfDeaf,
      self_video: c.camera,
      self_stream: c.screen,
    });
  }

  // ---- media -------------------------------------------------------------------------------

  private async connect(server: VoiceServerUpdate) {
    if (!this.call) return;
    this.call = { ...this.call, channelId: server.channel_id, status: 'connecting', error: null };
    this.changed();
    let lk: LiveKit;
    try {
      lk = await livekit();
    } catch (e) {
      this.call = {
        ...this.call,
        status: 'failed',
        error: `Voice could not be loaded: ${(e as Error).message}`,
      };
      this.changed();
      return;
    }
    const { RoomEvent } = lk;
    const old = this.room;
    const room = new lk.Room({ adaptiveStream: true, dynacast: true });
    this.room = room;
    if (old) await old.disconnect();
    room
      .on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => this.onTrack(track))
      .on(RoomEvent.TrackUnsubscribed, (track: RemoteTrack) => track.detach().forEach((el) => el.remove()))
      .on(RoomEvent.ActiveSpeakersChanged, () => this.refresh())
      .on(RoomEvent.ParticipantConnected, () => this.refresh())
      .on(RoomEvent.ParticipantDisconnected, () => this.refresh())
      .on(RoomEvent.TrackMuted, () => this.refresh())
      .on(RoomEvent.TrackUnmuted, () => this.refresh())
      .on(RoomEvent.LocalTrackPublished, () => this.refresh())
      .on(RoomEvent.LocalTrackUnpublished, () => this.refresh())
      .on(RoomEvent.Disconnected, (reason?: DisconnectReason) => {
        if (this.room !== room || !this.call) return;
        this.room = null;
        if (reason === lk.DisconnectReason.ROOM_DELETED) {
          // Natter ended the call for everyone (declined by all it rang, or the last one left):
          // nothing went wrong, so the call simply closes and "Start a call" is back.
          this.call = null;
        } else if (reason === lk.DisconnectReason.PARTICIPANT_REMOVED) {
          this.call = null;
          this.notice = 'You were disconnected from voice.';
        } else {
          this.call = {
            ...this.call,
            status: 'failed',
            error: 'The call ended: the media server closed it.',
          };
        }
        this.changed();
      });
    const rtcConfig = this.options.iceTransportPolicy
      ? { iceTransportPolicy: this.options.iceTransportPolicy }
      : undefined;
    try {
      await withTimeout(room.connect(server.endpoint, server.token, { rtcConfig }), CONNECT_TIMEOUT_MS);
    } catch (e) {
      if (this.room !== room || !this.call) return;
      this.room = null;
      void room.disconnect();
      this.call = {
        ...this.call,
        status: 'failed',
        error: `The media server at ${server.endpoint} cannot be reached (${(e as Error).message}). Check your network, or ask the server's operator to open its ports.`,
      };
      this.changed();
      return;
    }
    if (this.room !== room || !this.call) return;
    this.call.status = 'connected';
    if (room.localParticipant.permissions?.canPublish !== false) await this.applyMicrophone();
    this.applyDeaf();
    this.refresh();
  }

  private onTrack(track: RemoteTrack) {
    if (track.kind === 'audio') {
      const el = track.attach();
      this.audio.appendChild(el);
      if (this.call?.selfDeaf) (track as RemoteAudioTrack).setVolume(0);
    }
    this.refresh();
  }

  private applyDeaf() {
    const deaf = !!this.call?.selfDeaf;
    for (const p of this.room?.remoteParticipants.values() ?? []) {
      for (const pub of p.audioTrackPublications.values()) {
        if (pub.track) (pub.track as RemoteAudioTrack).setVolume(deaf ? 0 : 1);
      }
    }
  }

  /** Rebuilds the grid from the room. */
  private refresh() {
    const room = this.room;
    if (!this.call) return;
    if (!room || room.state !== 'connected') {
      this.changed();
      return;
    }
    const tile = (p: Participant, local: boolean): Tile => {
      const track = (source: Track.Source) =>
        (p.getTrackPublication(source) as LocalTrackPublication | undefined)?.track?.mediaStreamTrack;
      return {
        identity: p.identity,
        local,
        speaking: p.isSpeaking,
        muted: !p.isMicrophoneEnabled,
        camera: track('camera' as Track.Source),
        screen: track('screen_share' as Track.Source),
      };
    };
    this.call.tiles = [
      tile(room.localParticipant, true),
      ...[...room.remoteParticipants.values()].map((p) => tile(p, false)),
    ];
    this.changed();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer in ${ms / 1000} s`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
