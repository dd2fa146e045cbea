// Where I stand, shown on the tab: the unread total in the title ("(3) Natter", as Discord) and a
// favicon with a red count drawn on a canvas over the app's icon, so a pinned or crowded tab still
// says it. The favicon is swapped by pointing the page's icon links at a blob: URL of the drawing
// (the page's Content-Security-Policy allows blob: images, not data: ones).

/** The tab's title for an unread total. */
export function titleFor(unread: number): string {
  return unread > 0 ? `(${badgeText(unread)}) Natter` : 'Natter';
}

/** The count as a badge shows it: at most "99+". */
export function badgeText(count: number): string {
  return count > 99 ? '99+' : String(count);
}

const ICON = '/favicon.svg';
const SIZE = 64;
let base: Promise<HTMLImageElement | null> | null = null;
let shown = -1;
let blobUrl: string | null = null;

function forgetBlob() {
  if (blobUrl) URL.revokeObjectURL(blobUrl);
  blobUrl = null;
}

function loadBase(): Promise<HTMLImageElement | null> {
  base ??= new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => resolve(null);
    img.src = ICON;
  });
  return base;
}

function iconLinks(): HTMLLinkElement[] {
  return Array.from(document.querySelectorAll<HTMLLinkElement>('link[rel~="icon"]'));
}

/** Draws the badge (or puts the plain icon back for 0). Later calls win over slower earlier ones. */
export async function showFaviconBadge(unread: number): Promise<void> {
  if (unread === shown) return;
  shown = unread;
  const links = iconLinks();
  if (unread <= 0) {
    for (const l of links) {
      const original = l.dataset.original;
      if (original) l.href = original;
      if (l.dataset.originalType !== undefined) l.type = l.dataset.originalType;
    }
    document.documentElement.removeAttribute('data-unread-badge');
    forgetBlob();
    return;
  }
  const img = await loadBase();
  if (shown !== unread) return;
  const canvas = document.createElement('canvas');
  canvas.width = SIZE;
  canvas.height = SIZE;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  if (img) ctx.drawImage(img, 0, 0, SIZE, SIZE);
  const text = badgeText(unread);
  const r = text.length > 2 ? 24 : 20;
  ctx.fillStyle = '#ed4245';
  ctx.beginPath();
  ctx.arc(SIZE - r, SIZE - r, r, 0, Math.PI * 2);
  ctx.fill();
  ctx.fillStyle = '#ffffff';
  ctx.font = `bold ${text.length > 2 ? 20 : 28}px sans-serif`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(text, SIZE - r, SIZE - r + 1);
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
  if (!blob || shown !== unread) return;
  forgetBlob();
  const url = (blobUrl = URL.createObjectURL(blob));
  for (const l of links) {
    l.dataset.original ??= l.getAttribute('href') ?? ICON;
    l.dataset.originalType ??= l.type;
    l.href = url;
    l.type = 'image/png';
  }
  // What the tab shows, for tests and assistive tools that cannot see the icon.
  document.documentElement.setAttribute('data-unread-badge', text);
}
