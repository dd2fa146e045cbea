// Images PUT to media (an avatar, a server icon): media squares and re-encodes them and sets
// them through auth with the caller's token, then answers auth's answer (docs/API.md, "Avatars
// and server icons"). One function for both, so the token, its refresh and the errors are
// handled alike.

import { session } from '../auth/session';
import { isErrorBody } from './contract';
import { ApiError } from './rest';
import type { ErrorBody } from './types';

/** PUTs `image` to `{mediaUrl}{path}` with the access token (refreshed once on a 401). */
export async function putImage<T>(mediaUrl: string | null, path: string, image: Blob): Promise<T> {
  if (!mediaUrl) throw new Error('Not connected yet; try again in a moment.');
  const send = async (fresh: boolean) =>
    fetch(`${mediaUrl}${path}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${await session.accessToken(fresh)}` },
      body: image,
    });
  let res = await send(false);
  if (res.status === 401) res = await send(true);
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const said: ErrorBody = isErrorBody(body)
      ? (body as ErrorBody)
      : { code: `http_${res.status}`, message: `media answered ${res.status}` };
    throw new ApiError(res.status, said);
  }
  return body as T;
}
