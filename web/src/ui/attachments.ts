// What a message's files look like before they load: how large an image's box is (so the list
// does not jump when it arrives), which files show inline, and sizes and durations as people
// read them.
import type { Attachment } from '../api/types';

/** The widest and tallest an image shows in the list, in CSS pixels. */
export const MAX_BOX = { width: 400, height: 300 };

/** Images shown in the list (their preview); anything else is a file card. */
export function isInlineImage(a: Attachment): boolean {
  return ['image/jpeg', 'image/png', 'image/gif', 'image/webp'].includes(a.content_type ?? '');
}

/**
 * Which player a file plays in, if any: the recordings and videos media serves inline (its
 * `renders_inline`), which the browser streams from the file's URL with Range requests.
 */
export function playerOf(a: Pick<Attachment, 'content_type'>): 'audio' | 'video' | null {
  const type = a.content_type ?? '';
  if (
    [
      'audio/mpeg',
      'audio/ogg',
      'audio/opus',
      'audio/x-wav',
      'audio/x-flac',
      'audio/m4a',
      'audio/aac',
    ].includes(type)
  ) {
    return 'audio';
  }
  if (['video/mp4', 'video/webm'].includes(type)) return 'video';
  return null;
}

/**
 * The box an image takes in the list: its own size scaled down to fit [`MAX_BOX`], never up;
 * a fixed box when its size is not known yet.
 */
export function imageBox(
  a: Pick<Attachment, 'width' | 'height'>,
  side?: number,
): { width: number; height: number } {
  const { width, height } = a;
  if (!width || !height) return { width: 240, height: 180 };
  const box = side ? { width: side, height: side } : MAX_BOX;
  const scale = Math.min(1, box.width / width, box.height / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** A size in bytes as people read it: 512 B, 3.4 KB, 12 MB. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/**
 * A recording's length as players show it: 0:07, 3:25, 1:02:03 (whole seconds, rounded down as
 * a player's clock is).
 */
export function formatDuration(seconds: number): string {
  const whole = Number.isFinite(seconds) && seconds > 0 ? Math.floor(seconds) : 0;
  const s = whole % 60;
  const m = Math.floor(whole / 60) % 60;
  const h = Math.floor(whole / 3600);
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
