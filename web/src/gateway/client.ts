// The gateway client: the one place that owns the WebSocket. It finds an edge through discovery,
// identifies or resumes, heartbeats, reconnects with backoff, re-sends requests that were not
// answered, and hands every event to its listeners. Views never see the socket; they read the
// cache these events patch (chat/store.ts).
//
// States: idle → connecting → handshaking → ready, and back to connecting (after a backoff delay)
// whenever the socket drops. `stop()` ends it for good (sign-out).

import { checkFrame } from '../api/contract';
import { Op, type Frame, type Ready, type Resumed } from '../api/types';
import { backoffDelay, defaultBackoff, type BackoffPolicy } from './backoff';

/** The parts of a browser WebSocket the client uses, so tests can stand in a fake one. */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export interface GatewayEnv {
  createSocket(url: string): SocketLike;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

export interface GatewayOptions {
  /** Edge WebSocket URLs, best first (GET /api/v1/gateway). */
  discover(): Promise<string[]>;
  /** A current access token; `fresh` asks for a newly refreshed one (the last was refused). */
  token(fresh: boolean): Promise<string>;
  env?: Partial<GatewayEnv>;
  backoff?: BackoffPolicy;
  /** How long an unanswered request waits before it is reported as failed (it is still re-sent). */
  requestTimeoutMs?: number;
}

export type ConnectionState = 'idle' | 'connecting' | 'handshaking' | 'ready' | 'stopped';

export interface GatewayEvents {
  state: { state: ConnectionState; reconnecting: boolean };
  /** A new session: the channel list is complete; anything missed before it must come from history. */
  ready: Ready;
  /** A resumed session: every missed stored event was replayed before this. */
  resumed: Resumed;
  dispatch: { t: string; d: unknown; s: number | null };
  /** The access token was refused twice in a row: the user must sign in again. */
  authFailed: undefined;
  /** An ERROR that answers no request of ours (op 4's refusals carry no nonce). */
  error: { code: string; message: string };
}

type Listener<K extends keyof GatewayEvents> = (payload: GatewayEvents[K]) => void;

export class RequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** How long the server asked to wait before trying again (`retry_after`, in seconds, on the
     * wire), when it said. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

interface PendingRequest {
  op: number;
  d: Record<string, unknown>;
  resolve(value: unknown): void;
  reject(error: RequestError): void;
  timer: unknown;
}

const CLOSE_AUTH_FAILED = 4004;
const CLOSE_INVALID_SEQ = 4007;
/** Our own close when the server stopped answering heartbeats. */
const CLOSE_ZOMBIE = 4900;

const browserEnv: GatewayEnv = {
  createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  random: () => Math.random(),
};

export class GatewayClient {
  private readonly env: GatewayEnv;
  private readonly backoff: BackoffPolicy;
  private readonly requestTimeoutMs: number;
  private listeners = new Map<keyof GatewayEvents, Set<(payload: never) => void>>();

  private socket: SocketLike | null = null;
  private stateValue: ConnectionState = 'idle';
  private everReady = false;
  private sessionId: string | null = null;
  private seqValue: number | null = null;
  private heartbeatTimer: unknown = null;
  private heartbeatInterval = 0;
  private awaitingAck = false;
  private reconnectTimer: unknown = null;
  private attempt = 0;
  private authFailures = 0;
  private urlIndex = 0;
  private currentUrl: string | null = null;
  private requests = new Map<string, PendingRequest>();

  constructor(private readonly options: GatewayOptions) {
    this.env = { ...browserEnv, ...options.env };
    this.backoff = options.backoff ?? defaultBackoff;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  }

  get state(): ConnectionState {
    return this.stateValue;
  }
  /** The highest stored-event sequence seen: what a RESUME continues from. */
  get seq(): number | null {
    return this.seqValue;
  }
  get session(): string | null {
    return this.sessionId;
  }
  /** The edge this client is connected (or connecting) to. */
  get url(): string | null {
    return this.currentUrl;
  }

  on<K extends keyof GatewayEvents>(event: K, fn: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const s = set as Set<Listener<K>>;
    s.add(fn);
    return () => {
      s.delete(fn);
    };
  }

  private emit<K extends keyof GatewayEvents>(event: K, payload: GatewayEvents[K]) {
    const set = this.listeners.get(event) as Set<Listener<K>> | undefined;
    [...(set ?? [])].forEach((fn) => fn(payload));
  }

  start() {
    if (this.stateValue !== 'idle') return;
    void this.connect();
  }

  /** Closes for good (sign-out); unanswered requests fail. */
  stop() {
    this.setState('stopped');
    this.clearTimers();
    this.dropSocket(1000);
    for (const [nonce, r] of this.requests) {
      this.env.clearTimeout(r.timer);
      r.reject(new RequestError('stopped', 'signed out'));
      this.requests.delete(nonce);
    }
  }

  /**
   * Sends a request answered by ACK or ERROR (MESSAGE_SEND, MESSAGE_EDIT, MESSAGE_DELETE), keyed by
   * its nonce. It is sent now if the session is ready and re-sent, with the same nonce, after every
   * reconnect until answered, so the server stores it once. The promise rejects with code
   * `timeout` if no answer came in time; the request keeps being re-sent until `forget(nonce)`.
   */
  request<T = unknown>(op: number, d: Record<string, unknown> & { nonce: string }): Promise<T> {
    const previous = this.requests.get(d.nonce);
    if (previous) {
      this.env.clearTimeout(previous.timer);
      previous.reject(new RequestError('superseded', 'sent again'));
    }
    return new Promise<T>((resolve, reject) => {
      const pending: PendingRequest = {
        op,
        d,
        resolve: resolve as (v: unknown) => void,
        reject,
        timer: this.env.setTimeout(() => {
          reject(new RequestError('timeout', 'no answer from the server yet'));
        }, this.requestTimeoutMs),
      };
      this.requests.set(d.nonce, pending);
      if (this.stateValue === 'ready') this.send(op, d);
    });
  }

  /** Stops re-sending a request (the user discarded it). */
  forget(nonce: string) {
    const r = this.requests.get(nonce);
    if (r) this.env.clearTimeout(r.timer);
    this.requests.delete(nonce);
  }

  /** Sends a frame that needs no answer (typing, presence) if the session is ready. */
  notify(op: number, d: unknown): boolean {
    if (this.stateValue !== 'ready') return false;
    this.send(op, d);
    return true;
  }

  private isStopped(): boolean {
    // A method, so TypeScript does not narrow the state across the await before it.
    return this.stateValue === 'stopped';
  }

  private setState(state: ConnectionState) {
    if (this.stateValue === state) return;
    if (this.stateValue === 'stopped') return;
    this.stateValue = state;
    this.emit('state', { state, reconnecting: this.everReady && state !== 'ready' });
  }

  private async connect() {
    if (this.stateValue === 'stopped') return;
    this.setState('connecting');
    let urls: string[];
    try {
      urls = await this.options.discover();
      if (urls.length === 0) throw new Error('no edge');
    } catch {
      this.scheduleReconnect();
      return;
    }
    if (this.isStopped()) return;
    // The first choice is the least-loaded edge; after failures, walk the alternatives.
    const url = urls[this.urlIndex % urls.length];
    this.currentUrl = url;
    let socket: SocketLike;
    try {
      socket = this.env.createSocket(url);
    } catch {
      this.urlIndex++;
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.awaitingAck = false;
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return;
      let raw: unknown;
      try {
        raw = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      // Checked against the contract, never cast: a frame that does not match is dropped.
      const frame = checkFrame(raw);
      if (frame) void this.onFrame(frame);
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.onClose(ev.code);
    };
    socket.onerror = () => {};
  }

  private async onFrame(frame: Frame) {
    switch (frame.op) {
      case Op.Hello: {
        this.setState('handshaking');
        this.heartbeatInterval = (frame.d as { heartbeat_interval: number }).heartbeat_interval;
        this.scheduleHeartbeat(this.heartbeatInterval * this.env.random());
        const socket = this.socket;
        const token = await this.options.token(this.authFailures > 0);
        if (this.socket !== socket || !socket) return;
        if (this.sessionId !== null && this.seqValue !== null) {
          this.send(Op.Resume, { token, session_id: this.sessionId, seq: this.seqValue });
        } else {
          this.send(Op.Identify, { token });
        }
        break;
      }
      case Op.HeartbeatAck:
        this.awaitingAck = false;
        break;
      case Op.Heartbeat:
        this.send(Op.Heartbeat, this.seqValue);
        break;
      case Op.Reconnect:
        // The edge is draining: go elsewhere at once and resume there.
        this.dropSocket(4901);
        this.onClose(4901, true);
        break;
      case Op.InvalidSession:
        this.sessionId = null;
        this.seqValue = null;
        this.dropSocket(4902);
        this.onClose(4902);
        break;
      case Op.Ack:
      case Op.Error: {
        const d = frame.d as { nonce?: string; code?: string; message?: string; retry_after?: unknown };
        const r = d.nonce ? this.requests.get(d.nonce) : undefined;
        if (!r || !d.nonce) {
          if (frame.op === Op.Error) {
            this.emit('error', { code: d.code ?? 'error', message: d.message ?? 'the request failed' });
          }
          break;
        }
        this.requests.delete(d.nonce);
        this.env.clearTimeout(r.timer);
        if (frame.op === Op.Ack) r.resolve(frame.d);
        else {
          const retryAfter = typeof d.retry_after === 'number' ? d.retry_after * 1000 : undefined;
          r.reject(new RequestError(d.code ?? 'error', d.message ?? 'the request failed', retryAfter));
        }
        break;
      }
      case Op.Dispatch:
        this.onDispatch(frame);
        break;
    }
  }

  private onDispatch(frame: Frame) {
    const t = frame.t ?? '';
    const s = frame.s ?? null;
    if (s !== null && (this.seqValue === null || s > this.seqValue)) this.seqValue = s;
    if (t === 'READY') {
      const ready = frame.d as Ready;
      this.sessionId = ready.session_id;
      this.seqValue = ready.seq;
      this.becameReady();
      this.emit('ready', ready);
      return;
    }
    if (t === 'RESUMED') {
      const resumed = frame.d as Resumed;
      if (this.seqValue === null || resumed.seq > this.seqValue) this.seqValue = resumed.seq;
      this.becameReady();
      this.emit('resumed', resumed);
      return;
    }
    this.emit('dispatch', { t, d: frame.d, s });
  }

  private becameReady() {
    this.attempt = 0;
    this.authFailures = 0;
    this.everReady = true;
    this.setState('ready');
    for (const r of this.requests.values()) this.send(r.op, r.d);
  }

  private onClose(code: number, immediately = false) {
    this.clearHeartbeat();
    if (this.stateValue === 'stopped') return;
    if (code === CLOSE_AUTH_FAILED) {
      this.authFailures++;
      if (this.authFailures >= 2) {
        this.emit('authFailed', undefined);
        this.stop();
        return;
      }
    }
    if (code === CLOSE_INVALID_SEQ) {
      this.sessionId = null;
      this.seqValue = null;
    }
    if (code !== CLOSE_AUTH_FAILED && code !== 4901) this.urlIndex++;
    this.setState('connecting');
    if (immediately) void this.connect();
    else this.scheduleReconnect();
  }

  private scheduleReconnect() {
    if (this.stateValue === 'stopped') return;
    this.setState('connecting');
    const delay = backoffDelay(this.attempt, this.env.random(), this.backoff);
    this.attempt++;
    this.env.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = this.env.setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
  }

  private scheduleHeartbeat(delay: number) {
    this.clearHeartbeat();
    this.heartbeatTimer = this.env.setTimeout(() => this.heartbeat(), delay);
  }

  private heartbeat() {
    if (!this.socket) return;
    if (this.awaitingAck) {
      // No ACK for the last heartbeat: the connection is dead even if the socket has not noticed.
      this.dropSocket(CLOSE_ZOMBIE);
      this.onClose(CLOSE_ZOMBIE);
      return;
    }
    this.awaitingAck = true;
    this.send(Op.Heartbeat, this.seqValue);
    this.scheduleHeartbeat(this.heartbeatInterval);
  }

  private send(op: number, d: unknown) {
    try {
      this.socket?.send(JSON.stringify({ op, d }));
    } catch {
      // A closing socket; the close handler reconnects and re-sends what needs it.
    }
  }

  private dropSocket(code: number) {
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onmessage = null;
      socket.onclose = null;
      try {
        socket.close(code);
      } catch {
        // already closed
      }
    }
  }

  private clearHeartbeat() {
    this.env.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private clearTimers() {
    this.clearHeartbeat();
    this.env.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }
}
