// The one "Are you sure?" of the client: every act that cannot be taken back (kick, ban, delete,
// leave, remove) asks here, in the app's own dialog rather than the browser's `confirm()`, which
// cannot say what happens, name its button for the act, or ask for a reason.
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { errorText, Modal } from './Modal';

/** The longest reason the audit log keeps (Discord's limit for `X-Audit-Log-Reason`). */
export const REASON_MAX = 512;

export interface Confirmation {
  /** A question naming the act and whom it touches ("Kick Carol?"). */
  title: string;
  /** What happens, in a sentence or two; may hold further choices (a ban's message deletion). */
  children: ReactNode;
  /** The destructive button's words: the act ("Kick Carol"). */
  confirm: string;
  /** Ask for an optional reason, kept in the audit log: the field's label and what it starts with. */
  reason?: { label: string; initial?: string };
  /** Does the act; gets the reason trimmed, or undefined when none was given. */
  onConfirm: (reason?: string) => Promise<unknown>;
}

/** The reason as sent: trimmed, and none at all when only blanks were typed. */
export function givenReason(text: string): string | undefined {
  return text.trim() || undefined;
}

/**
 * A titled dialog that does the act only on its explicit button. Cancel, Escape and the close
 * button do nothing; focus starts on Cancel, so a stray Enter does nothing either. A failure is
 * shown in the dialog, which stays open to try again or cancel.
 */
export function ConfirmDialog({
  title,
  children,
  confirm,
  reason,
  onConfirm,
  onClose,
}: Confirmation & { onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [text, setText] = useState(reason?.initial ?? '');
  const cancel = useRef<HTMLButtonElement>(null);
  // After the dialog has opened (its layout effect) and the browser has focused its first control.
  useEffect(() => cancel.current?.focus(), []);
  const act = () => {
    setBusy(true);
    setError(null);
    onConfirm(reason ? givenReason(text) : undefined)
      .then(onClose)
      .catch((e: unknown) => {
        setError(errorText(e));
        setBusy(false);
      });
  };
  return (
    <Modal title={title} onClose={onClose}>
      <div className="stack confirm">
        {children}
        {reason && (
          <label>
            {reason.label} <span className="muted">(optional, kept in the audit log)</span>
            <input
              name="confirm-reason"
              maxLength={REASON_MAX}
              value={text}
              onChange={(e) => setText(e.target.value)}
            />
          </label>
        )}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <div className="row">
          <button type="button" ref={cancel} onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="button" className="danger" disabled={busy} onClick={act}>
            {confirm}
          </button>
        </div>
      </div>
    </Modal>
  );
}

/**
 * A confirmation to open from an event handler: `ask({...})` shows it, and `dialog` must be
 * rendered where the asking component renders.
 */
export function useConfirm() {
  const [asked, setAsked] = useState<Confirmation | null>(null);
  const dialog = asked ? <ConfirmDialog {...asked} onClose={() => setAsked(null)} /> : null;
  return { ask: (c: Confirmation) => setAsked(c), dialog };
}
