// A dialog on the native <dialog> element: it traps focus, closes on Escape and returns focus to
// what opened it, with no library.
import { useId, useLayoutEffect, useRef, useState, type ReactNode } from 'react';
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
  // Its own id: a dialog may open over another (a confirmation over a member's settings), and
  // each must be named by its own title.
  const titleId = useId();
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
      aria-labelledby={titleId}
      // Only this dialog's own events: React passes a dialog's close and cancel up its component
      // tree, so a confirmation's Cancel would otherwise also shut the dialog it opened over.
      onClose={(e) => e.target === e.currentTarget && onClose()}
      onCancel={(e) => e.target === e.currentTarget && onClose()}
    >
      <header>
        <h2 id={titleId}>{title}</h2>
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
