// Sending files in Discord's two steps (docs/API.md, "Files"): ask media for a slot per file,
// PUT each file's bytes to its slot's `upload_url` (media itself on local disk, a presigned PUT
// straight into the store on S3), then send the message naming the uploads on the edge.
// XMLHttpRequest for the PUTs, for their progress; cancelling aborts them, and nothing is sent
// (media's sweeper deletes uploads no message took).
import { call } from '../api/rest';
import type { Message } from '../api/types';

/** The most files one message carries, as on Discord. */
export const MAX_FILES = 10;

export interface FileSend {
  /** The sent message, or why not (a `cancelled` error when cancelled). */
  done: Promise<Message>;
  cancel: () => void;
}

/** One slot as media hands it out. */
export interface Slot {
  id: string;
  upload_url: string;
  upload_filename: string;
}

/** The slot request for `files`: ids are their places in the list. */
export function slotRequest(files: readonly File[]) {
  return { files: files.map((f, i) => ({ id: String(i), filename: f.name, file_size: f.size })) };
}

/** The message naming the uploads, each by the slot its file got. */
export function messageBody(content: string, nonce: string, files: readonly File[], slots: readonly Slot[]) {
  const byId = new Map(slots.map((s) => [s.id, s]));
  const attachments = files.map((f, i) => {
    const slot = byId.get(String(i));
    if (!slot) throw new Error(`media handed out no slot for ${f.name}`);
    return { id: String(i), filename: f.name, uploaded_filename: slot.upload_filename };
  });
  return { content, nonce, attachments };
}

/** Why a PUT was refused, in words: media's JSON error, or a store's XML one by its status. */
function refusal(xhr: XMLHttpRequest): string {
  try {
    const body: unknown = JSON.parse(xhr.responseText);
    if (body && typeof body === 'object' && 'message' in body)
      return String((body as { message: unknown }).message);
  } catch {
    // a store's XML: said by its status
  }
  return xhr.status === 403
    ? 'the upload link was refused (it may have expired); try again'
    : `the upload failed (${xhr.status})`;
}

/** Sends `content` with `files` to `channelId`: slots and bytes on media at `mediaUrl`, the message on the edge at `edgeOrigin`. */
export function sendFiles(
  edgeOrigin: string,
  mediaUrl: string,
  channelId: string,
  content: string,
  files: readonly File[],
  onProgress: (fraction: number) => void,
): FileSend {
  const nonce = `f${Date.now().toString(36)}${Math.floor(Math.random() * 1e9).toString(36)}`;
  const inFlight = new Set<XMLHttpRequest>();
  let cancelled = false;
  const stopIfCancelled = () => {
    if (cancelled) throw new Error('cancelled');
  };

  const total = files.reduce((n, f) => n + f.size, 0) || 1;
  const loaded = files.map(() => 0);
  const put = (file: File, i: number, url: string) =>
    new Promise<void>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      inFlight.add(xhr);
      xhr.open('PUT', url);
      xhr.upload.onprogress = (e) => {
        loaded[i] = e.loaded;
        onProgress(loaded.reduce((a, b) => a + b, 0) / total);
      };
      xhr.onload = () => {
        inFlight.delete(xhr);
        if (xhr.status >= 200 && xhr.status < 300) {
          loaded[i] = file.size;
          return resolve();
        }
        reject(new Error(`${file.name}: ${refusal(xhr)}`));
      };
      xhr.onerror = () => {
        inFlight.delete(xhr);
        reject(new Error('the files could not be sent; try again'));
      };
      xhr.onabort = () => {
        inFlight.delete(xhr);
        reject(new Error('cancelled'));
      };
      xhr.send(file);
    });

  const done = (async () => {
    const { attachments: slots } = await call<{ attachments: Slot[] }>(
      `/api/v1/channels/${channelId}/attachments`,
      {
        method: 'POST',
        origin: mediaUrl,
        body: slotRequest(files),
      },
    );
    stopIfCancelled();
    const message = messageBody(content, nonce, files, slots);
    const urls = new Map(slots.map((s) => [s.id, s.upload_url]));
    try {
      await Promise.all(files.map((f, i) => put(f, i, urls.get(String(i)) as string)));
    } catch (e) {
      for (const xhr of inFlight) xhr.abort();
      throw e;
    }
    stopIfCancelled();
    onProgress(1);
    return call<Message>(`/api/v1/channels/${channelId}/messages`, {
      method: 'POST',
      origin: edgeOrigin,
      body: message,
    });
  })();
  return {
    done,
    cancel: () => {
      cancelled = true;
      for (const xhr of inFlight) xhr.abort();
    },
  };
}
