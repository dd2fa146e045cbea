// The files waiting to go with the next message: their names (each removable), and while they
// are sent, the upload's progress and a way to cancel it.
import { formatSize } from './attachments';
import { CloseIcon } from './icons';

export function FileTray({
  files,
  progress,
  error,
  onRemove,
  onCancel,
}: {
  files: readonly File[];
  /** 0 to 1 while sending; null before. */
  progress: number | null;
  error: string | null;
  onRemove: (index: number) => void;
  onCancel: () => void;
}) {
  if (!files.length && !error) return null;
  return (
    <div className="file-tray" aria-label="Files to send">
      {files.map((f, i) => (
        <span key={`${f.name}-${i}`} className="file-chip">
          {f.name} <span className="attachment-size">{formatSize(f.size)}</span>
          {progress === null && (
            <button
              type="button"
              className="icon"
              aria-label={`Remove ${f.name}`}
              onClick={() => onRemove(i)}
            >
              <CloseIcon />
            </button>
          )}
        </span>
      ))}
      {progress !== null && (
        <span className="file-progress">
          <progress value={progress} max={1} aria-label="Upload progress" />
          <button type="button" className="link" onClick={onCancel}>
            Cancel
          </button>
        </span>
      )}
      {error && (
        <span className="field-error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}
