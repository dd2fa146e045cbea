// Sending files: one multipart request to the edge (Discord's `payload_json` and `files[n]`),
// which streams each file to media and sends the message naming them. XMLHttpRequest rather than
// fetch, for the upload's progress; cancelling aborts the request, and nothing is sent.
import { session } from '../auth/session';
import type { Message } from '../api/types';

/** The most files one message carries, as on Discord. */
export const MAX_FILES = 10;

export interface FileSend {
  /** The sent message, or why not (a `cancelled` error when cancelled). */
  done: Promise<Message>;
  cancel: () => void;
}

/** The multipart body of a message with files. */
export function multipartBody(content: string, nonce: string, files: readonly File[]): FormData {
  const body = new FormData();
  body.append('payload_json', JSON.stringify(content ? { content, nonce } : { content: '', nonce }));
  files.forEach((file, i) => body.append(`files[${i}]`, file, file.name));
  return body;
}

/** Sends `content` with `files` to `channelId` through the edge at `origin`. */
export function sendFiles(
  origin: string,
  channelId: string,
  content: string,
  files: readonly File[],
  onProgress: (fraction: number) => void,
): FileSend {
  const xhr = new XMLHttpRequest();
  const nonce = `f${Date.now().toString(36)}${Math.floor(Math.random() * 1e9).toString(36)}`;
  const done = session.accessToken(false).then(
    (token) =>
      new Promise<Message>((resolve, reject) => {
        xhr.open('POST', `${origin}/api/v1/channels/${channelId}/messages`);
        xhr.setRequestHeader('authorization', `Bearer ${token}`);
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
        };
        xhr.onload = () => {
          let body: unknown = null;
          try {
            body = JSON.parse(xhr.responseText);
          } catch {
            // an answer that is not JSON: said below by its status
          }
          if (xhr.status === 200) return resolve(body as Message);
          const message =
            body && typeof body === 'object' && 'message' in body
              ? String((body as { message: unknown }).message)
              : `the edge answered ${xhr.status}`;
          reject(new Error(message));
        };
        xhr.onerror = () => reject(new Error('the files could not be sent; try again'));
        xhr.onabort = () => reject(new Error('cancelled'));
        xhr.send(multipartBody(content, nonce, files));
      }),
  );
  return { done, cancel: () => xhr.abort() };
}
