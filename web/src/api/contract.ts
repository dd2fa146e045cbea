// What the client receives is checked against the contract before it is used, never cast: every
// gateway frame, and every REST answer. The checks are generated from the Rust types
// (./generated/validators.js, plain functions: they run under the page's strict CSP).
//
// A frame that does not match is dropped and logged (a newer server's event this client does not
// know, or a broken one); an answer that does not match fails its call.

import { answers } from './generated/answers';
import { Ack, Dispatch, ErrorBody, ErrorReply, Hello } from './generated/validators.js';
import type { Validator } from './generated/validators.js';
import { Op, type Frame } from './types';

/** Where a value broke its check, for the log. */
function why(check: Validator): string {
  const first = check.errors?.[0];
  return first
    ? `${first.instancePath || '(the payload)'} ${first.message ?? 'does not match'}`
    : 'does not match';
}

function dropped(frame: unknown, reason: string): null {
  console.warn(`gateway: dropped a frame that does not match the contract (${reason})`, frame);
  return null;
}

/** The frame, when it matches the contract for its opcode (and, for a DISPATCH, its name); else
 * null, and the frame is logged. */
export function checkFrame(raw: unknown): Frame | null {
  if (typeof raw !== 'object' || raw === null) return dropped(raw, 'not an object');
  const frame = raw as Record<string, unknown>;
  const { op, d, s, t } = frame;
  if (typeof op !== 'number') return dropped(raw, 'no opcode');
  if (s !== undefined && s !== null && typeof s !== 'number') return dropped(raw, '`s` is not a number');
  if (t !== undefined && t !== null && typeof t !== 'string') return dropped(raw, '`t` is not a string');
  const payload = (check: Validator) => (check(d) ? null : why(check));
  let problem: string | null;
  switch (op) {
    case Op.Dispatch:
      problem = Dispatch({ t, d }) ? null : `${String(t)}: ${why(Dispatch)}`;
      break;
    case Op.Hello:
      problem = payload(Hello);
      break;
    case Op.Ack:
      problem = payload(Ack);
      break;
    case Op.Error:
      problem = payload(ErrorReply);
      break;
    case Op.InvalidSession:
      problem = typeof d === 'boolean' ? null : 'INVALID_SESSION without a boolean';
      break;
    case Op.Heartbeat:
    case Op.HeartbeatAck:
    case Op.Reconnect:
      problem = null;
      break;
    default:
      problem = `opcode ${op} is not one a server sends`;
  }
  return problem === null ? (frame as unknown as Frame) : dropped(raw, problem);
}

/** Why a REST answer does not match what its route answers, or null when it does (or when the
 * route answers no JSON). */
export function checkAnswer(method: string, url: string, body: unknown): string | null {
  const path = url.split('?')[0];
  const route = answers.find((a) => a.method === method.toUpperCase() && a.path.test(path));
  if (!route) return null;
  return route.validate(body) ? null : `${method} ${path}: ${why(route.validate)}`;
}

/** Whether an error answer is in the one error shape. */
export function isErrorBody(body: unknown): boolean {
  return ErrorBody(body);
}
