// A message's files: images inline in a box of their own shape (reserved before they load, so the
// list does not jump), opened large in a lightbox; anything else as a card with its name, size
// (a recording's duration too, once processing has read it) and a download link, recordings and
// videos with a player above it. Images show their preview (`proxy_url`); the lightbox, players
// and downloads the file itself (`url`). Players load nothing until asked (`preload="none"`), so
// a channel of voice messages costs no downloads; a video keeps its box like an image.
import { useState } from 'react';
import type { Attachment } from '../api/types';
import { formatDuration, formatSize, imageBox, isInlineImage, playerOf } from './attachments';
import { Modal } from './Modal';

export function Attachments({ files }: { files: Attachment[] }) {
  const [open, setOpen] = useState<Attachment | null>(null);
  return (
    <div className="attachments">
      {files.map((a) =>
        isInlineImage(a) ? (
          <button
            key={a.id}
            type="button"
            className="attachment-image"
            style={imageBox(a)}
            aria-label={`Open ${a.filename}`}
            onClick={() => setOpen(a)}
          >
            <img src={a.proxy_url} alt={a.filename} loading="lazy" decoding="async" />
          </button>
        ) : (
          <div key={a.id} className="attachment-file">
            <Player file={a} />
            <span className="attachment-name" title={a.filename}>
              {a.filename}
            </span>
            {a.duration_secs != null && (
              <span className="attachment-duration" title="Duration">
                {formatDuration(a.duration_secs)}
              </span>
            )}
            <span className="attachment-size">{formatSize(a.size)}</span>
            <a href={a.url} download={a.filename} rel="noopener noreferrer">
              Download
            </a>
          </div>
        ),
      )}
      {open && (
        <Modal title={open.filename} onClose={() => setOpen(null)} wide>
          <div className="lightbox">
            <img src={open.url} alt={open.filename} />
            <a href={open.url} download={open.filename} rel="noopener noreferrer">
              Open original
            </a>
          </div>
        </Modal>
      )}
    </div>
  );
}

/** A recording's or a video's player, above its card; nothing for other files. */
function Player({ file }: { file: Attachment }) {
  const kind = playerOf(file);
  if (!kind) return null;
  const Media = kind;
  return (
    <Media
      className="attachment-player"
      controls
      preload="none"
      src={file.url}
      style={kind === 'video' ? imageBox(file) : undefined}
      aria-label={`Play ${file.filename}`}
    />
  );
}
