// The crop step's maths, kept pure so it is tested on its own: the cropper (react-easy-crop)
// reports the selected area in the image's own pixels, as fractions and sometimes a hair outside
// the image (rounding at the edges, an image smaller than the view); this turns it into the
// whole-pixel square that is drawn, inside the image, and the size it is drawn at.

/** A rectangle in the image's pixels. */
export interface Area {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A square in the image's pixels: what the canvas copies. */
export interface Square {
  x: number;
  y: number;
  side: number;
}

/**
 * Largest side sent to media: media makes 256 px of it, so more only costs bytes; 1024 leaves
 * room should it keep a larger size one day.
 */
export const MAX_OUTPUT_SIDE = 1024;

const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);

/**
 * The square selected in an image of `width` by `height` pixels: as large as the area's shorter
 * side (never larger than the image), around the area's centre, moved inside the image where the
 * area reached past an edge. Anything not finite counts as the whole image's centred square.
 */
export function squareIn(area: Area, width: number, height: number): Square {
  const W = Math.max(1, Math.floor(width));
  const H = Math.max(1, Math.floor(height));
  const most = Math.min(W, H);
  const finite = [area.x, area.y, area.width, area.height].every(Number.isFinite);
  const a = finite ? area : { x: (W - most) / 2, y: (H - most) / 2, width: most, height: most };
  const side = clamp(Math.round(Math.min(a.width, a.height)), 1, most);
  const cx = a.x + a.width / 2;
  const cy = a.y + a.height / 2;
  return {
    x: clamp(Math.round(cx - side / 2), 0, W - side),
    y: clamp(Math.round(cy - side / 2), 0, H - side),
    side,
  };
}

/** The side the square is drawn at: its own, at most `max` (never upscaled, at least 1). */
export function outputSide(square: Square, max = MAX_OUTPUT_SIDE): number {
  return clamp(square.side, 1, max);
}
