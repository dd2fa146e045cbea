// @vitest-environment jsdom
import { describe, expect, it, vi } from 'vitest';
import type { Ready, User, VoiceState } from '../api/types';
import { GatewayClient, type GatewayEvents } from '../gateway/client';
import { Voice } from './store';

/** A gateway client whose events the test emits by hand, recording what is sent. */
class FakeGateway extends GatewayClient {
  sent: { op: number; d: unknown }[] = [];
  constructor() {
    super({ discover: async () => ['ws://edge/gateway'], token: async () => 't' });
  }
  fire<K extends keyof GatewayEvents>(event: K, payload: GatewayEvents[K]) {
    (this as unknown as { emit: (k: K, p: GatewayEvents[K]) => void }).emit(event, payload);
  }
  override notify(op: number, d: unknown): boolean {
    this.sent.push({ op, d });
    return true;
  }
}

const ME: User = {
  id: '1',
  username: 'ann',
  display_name: null,
  avatar_url: null,
  bio: null,
  status: 'online',
};
const state = (user: string, channel: string | null, extra: Partial<VoiceState> = {}): VoiceState => ({
  guild_id: '100',
  channel_id: channel,
  user_id: user,
  session_id: `s${user}`,
  self_mute: false,
  self_deaf: false,
  self_video: false,
  self_stream: false,
  mute: false,
  deaf: false,
  ...extra,
});
const ready = (guildStates: VoiceState[], calls: VoiceState[] = []): Ready =>
  ({
    v: 1,
    session_id: 's',
    seq: 1,
    user: ME,
    channels: [],
    presences: [],
    guilds: [{ id: '100', voice_states: guildStates }],
    voice_states: calls,
  }) as unknown as Ready;

function setup() {
  const gw = new FakeGateway();
  const voice = new Voice(gw, ME.id);
  const changed = vi.fn();
  voice.subscribe(changed);
  return { gw, voice, changed };
}

describe('voice states', () => {
  it('come from READY (servers and calls) and follow VOICE_STATE_UPDATE', () => {
    const { gw, voice, changed } = setup();
    gw.fire('ready', ready([state('2', '10')], [state('3', '50', { guild_id: null })]));
    expect(voice.inChannel('10').map((s) => s.user_id)).toEqual(['2']);
    expect(voice.inChannel('50').map((s) => s.user_id)).toEqual(['3']);

    gw.fire('dispatch', { t: 'VOICE_STATE_UPDATE', d: state('4', '10', { self_mute: true }), s: null });
    expect(voice.inChannel('10').map((s) => s.user_id)).toEqual(['2', '4']);
    // Moving is one state: the person leaves the channel they were in.
    gw.fire('dispatch', { t: 'VOICE_STATE_UPDATE', d: state('2', '11'), s: null });
    expect(voice.inChannel('10').map((s) => s.user_id)).toEqual(['4']);
    gw.fire('dispatch', { t: 'VOICE_STATE_UPDATE', d: state('4', null), s: null });
    expect(voice.inChannel('10')).toEqual([]);
    expect(voice.snapshot().states.get('2')?.channel_id).toBe('11');
    expect(changed).toHaveBeenCalled();
    voice.stop();
  });

  it('a server gone takes its voice states with it', () => {
    const { gw, voice } = setup();
    gw.fire('ready', ready([state('2', '10')]));
    gw.fire('dispatch', { t: 'GUILD_DELETE', d: { id: '100' }, s: null });
    expect(voice.inChannel('10')).toEqual([]);
    voice.stop();
  });
});

describe('joining', () => {
  it('sends op 4, and a refusal says what is missing instead of spinning', () => {
    const { gw, voice } = setup();
    voice.join('100', '10');
    expect(gw.sent).toEqual([
      {
        op: 4,
        d: {
          guild_id: '100',
          channel_id: '10',
          self_mute: false,
          self_deaf: false,
          self_video: false,
          self_stream: false,
        },
      },
    ]);
    expect(voice.snapshot().call?.status).toBe('joining');
    gw.fire('error', { code: 'forbidden', message: 'missing permission CONNECT: you may not join' });
    const call = voice.snapshot().call;
    expect(call?.status).toBe('failed');
    expect(call?.error).toContain('CONNECT');
    voice.stop();
  });

  it('joins again after a new gateway session, and leaving sends a null channel', () => {
    const { gw, voice } = setup();
    voice.join(null, '50');
    gw.fire('ready', ready([]));
    expect(gw.sent.map((f) => (f.d as { channel_id: string | null }).channel_id)).toEqual(['50', '50']);
    voice.leave();
    expect(gw.sent.at(-1)).toEqual({ op: 4, d: { guild_id: null, channel_id: null } });
    expect(voice.snapshot().call).toBeNull();
    voice.stop();
  });
});
