// A message's link previews (Discord's embeds), as media made them after the message was sent:
// the site, the title (a link to the page), the description and the page's image. The image is
// Natter's own copy, served by media, so showing it never contacts the site; its box is reserved
// from its width and height before it loads. The author (or a moderator) can remove the previews,
// which removes them for everyone (PATCH with SUPPRESS_EMBEDS).
import type { Embed } from '../api/types';
import { imageBox } from './attachments';

/** A `0xRRGGBB` colour as CSS. */
function cssColor(color: number | null | undefined): string | undefined {
  return color == null ? undefined : `#${color.toString(16).padStart(6, '0')}`;
}

/** Only http(s) links are made clickable (media only previews those; this keeps it so). */
function safeHref(url: string): string | undefined {
  return /^https?:\/\//i.test(url) ? url : undefined;
}

export function Embeds({ embeds, onRemove }: { embeds: Embed[]; onRemove?: () => void }) {
  return (
    <div className="embeds">
      {embeds.map((e, i) => {
        const href = safeHref(e.url);
        const thumb = e.thumbnail;
        return (
          <div
            key={`${i}-${e.url}`}
            className={`embed embed-${e.type}`}
            style={{ borderLeftColor: cssColor(e.color) }}
            aria-label={`Link preview: ${e.title ?? e.provider?.name ?? e.url}`}
          >
            {e.provider?.name && <div className="embed-provider">{e.provider.name}</div>}
            {e.title &&
              (href ? (
                <a className="embed-title" href={href} target="_blank" rel="noopener noreferrer nofollow">
                  {e.title}
                </a>
              ) : (
                <div className="embed-title">{e.title}</div>
              ))}
            {e.description && <div className="embed-description">{e.description}</div>}
            {thumb && (
              <div
                className="embed-image"
                style={imageBox({ width: thumb.width, height: thumb.height }, e.type === 'image' ? 400 : 300)}
              >
                <img src={thumb.proxy_url} alt="" loading="lazy" decoding="async" />
              </div>
            )}
          </div>
        );
      })}
      {onRemove && (
        <button className="link small embed-remove" onClick={onRemove} aria-label="Remove embeds">
          Remove embeds
        </button>
      )}
    </div>
  );
}
