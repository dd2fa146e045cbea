// REST calls: auth's API same-origin (/api/v1), the message routes on the connected edge's HTTP
// origin. Every call carries the access token and, on a 401, refreshes it once and retries.

import { checkAnswer, isErrorBody } from './contract';
import type { ErrorBody } from './types';
import { session } from '../auth/session';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(body.message);
  }
  get fields(): Record<string, string> {
    return this.body.fields ?? {};
  }
}

interface CallOptions {
  method?: string;
  body?: unknown;
  /** An origin other than this page's (an edge), e.g. http://127.0.0.1:8080. */
  origin?: string;
  /** Send no token (sign-in, sign-up, refresh, discovery). */
  anonymous?: boolean;
  /** More headers (a server's `X-Audit-Log-Reason`). */
  headers?: Record<string, string>;
}

async function once(path: string, options: CallOptions, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  return fetch(`${options.origin ?? ''}${path}`, {
    method: options.method ?? 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
}

async function failure(res: Response): Promise<ApiError> {
  const unreadable = { code: 'http_' + res.status, message: `the server answered ${res.status}` };
  try {
    const body: unknown = await res.json();
    return new ApiError(res.status, isErrorBody(body) ? (body as ErrorBody) : unreadable);
  } catch {
    return new ApiError(res.status, unreadable);
  }
}

/** The answer's JSON, when it is what the route answers (checked, never cast). */
async function answer<T>(res: Response, method: string, path: string): Promise<T> {
  const body: unknown = await res.json();
  const problem = checkAnswer(method, path, body);
  if (problem) {
    console.warn(`REST: an answer that does not match the contract (${problem})`, body);
    throw new ApiError(res.status, {
      code: 'invalid_answer',
      message: 'the server answered something this client cannot read',
    });
  }
  return body as T;
}

export async function call<T>(path: string, options: CallOptions = {}): Promise<T> {
  let token = options.anonymous ? null : await session.accessToken(false);
  let res = await once(path, options, token);
  if (res.status === 401 && !options.anonymous) {
    token = await session.accessToken(true);
    res = await once(path, options, token);
    if (res.status === 401) session.signedOutElsewhere();
  }
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return undefined as T;
  return answer<T>(res, options.method ?? 'GET', path);
}

/** A call that needs no token and no refresh. */
export async function anonymous<T>(path: string, body?: unknown): Promise<T> {
  const res = await once(path, { method: body === undefined ? 'GET' : 'POST', body }, null);
  if (!res.ok) throw await failure(res);
  return answer<T>(res, body === undefined ? 'GET' : 'POST', path);
}
