// A dialog on the native <dialog> element: it traps focus, closes on Escape and returns focus to
// what opened it, with no library.
import { useLayoutEffect, useRef, useState, type ReactNode } from 'react';
import { CloseIcon } from './icons';

export function Modal({
  title,
  onClose,
  children,
  wide = false,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  /** Room for settings with many parts (a server's). */
  wide?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  // What had focus when the dialog was asked for (read while rendering, before anything in the
  // dialog can take focus): it gets focus back when the dialog closes.
  const [opener] = useState(() =>
    document.activeElement instanceof HTMLElement ? document.activeElement : null,
  );
  // A layout effect, so its clean-up runs while the dialog is still in the document: React
  // removes the element right after, and a removed dialog can no longer hand focus back (the
  // browser would drop it on the page body).
  useLayoutEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => {
      d?.close();
      if (opener?.isConnected) opener.focus();
    };
  }, [opener]);
  return (
    <dialog
      ref={ref}
      className={`modal ${wide ? 'wide' : ''}`}
      aria-labelledby="modal-title"
      onClose={onClose}
      onCancel={onClose}
    >
      <header>
        <h2 id="modal-title">{title}</h2>
        <button className="icon" aria-label="Close" onClick={onClose}>
          <CloseIcon />
        </button>
      </header>
      {children}
    </dialog>
  );
}

export function errorText(e: unknown): string {
  if (e && typeof e === 'object' && 'body' in e) {
    const body = (e as { body: { message: string; fields?: Record<string, string> } }).body;
    const fields = Object.entries(body.fields ?? {}).map(([k, v]) => `${k.replace('_', ' ')} ${v}`);
    return fields.length ? fields.join('; ') : body.message;
  }
  return e instanceof Error ? e.message : 'Something went wrong.';
}

/**
 * "Are you sure?" before something that cannot be taken back (removing someone): says what will
 * happen, and does it only on the explicit button; closing or Cancel does nothing.
 */
export function ConfirmDialog({
  title,
  children,
  confirm,
  onConfirm,
  onClose,
}: {
  title: string;
  children: ReactNode;
  /** The button's words: what it does ("Remove Carol"). */
  confirm: string;
  onConfirm: () => Promise<unknown>;
  onClose: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <Modal title={title} onClose={onClose}>
      <div className="stack">
        {children}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <div className="row">
          <button onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button
            className="danger"
            disabled={busy}
            onClick={() => {
              setBusy(true);
              setError(null);
              onConfirm()
                .then(onClose)
                .catch((e: unknown) => {
                  setError(errorText(e));
                  setBusy(false);
                });
            }}
          >
            {confirm}
          </button>
        </div>
      </div>
    </Modal>
  );
}
