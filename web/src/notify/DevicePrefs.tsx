// This device's notification choices: desktop notifications while the tab is in the background,
// their sound, and Web Push (pushes reach this browser while Natter is closed or I am away).
import { useEffect, useState } from 'react';
import { useChat } from '../chat/hooks';
import { errorText, Modal } from '../ui/Modal';
import { useNotifyPrefs } from './hooks';
import { disablePush, enablePush, pushSupported } from './push';

/** Whether this browser holds a push subscription now. */
async function subscribed(): Promise<boolean> {
  if (!pushSupported()) return false;
  const registration = await navigator.serviceWorker.getRegistration('/');
  return !!(await registration?.pushManager.getSubscription());
}

export function DevicePrefsDialog({ onClose }: { onClose: () => void }) {
  const chat = useChat();
  const prefs = useNotifyPrefs();
  const [push, setPush] = useState<boolean | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const permission = typeof Notification === 'undefined' ? 'unsupported' : Notification.permission;

  useEffect(() => {
    subscribed().then(setPush, () => setPush(false));
  }, []);

  const setDesktop = async (on: boolean) => {
    setError(null);
    if (on && typeof Notification !== 'undefined' && Notification.permission === 'default') {
      const answer = await Notification.requestPermission();
      if (answer !== 'granted') setNote('The browser does not allow notifications from Natter.');
    }
    chat.notifications.setPrefs({ desktop: on });
  };

  const togglePush = async (on: boolean) => {
    setBusy(true);
    setError(null);
    setNote(null);
    try {
      if (on) {
        const url = chat.notifications.notifyUrl;
        if (!url) throw new Error('The notification service is not available.');
        const outcome = await enablePush(url);
        if (outcome === 'denied') setNote('The browser does not allow notifications from Natter.');
        if (outcome === 'unsupported') setNote('This browser cannot receive pushes.');
        setPush(outcome === 'granted');
      } else {
        await disablePush();
        setPush(false);
      }
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal title="Notifications on this device" onClose={onClose}>
      <div className="stack">
        <label className="check">
          <input
            type="checkbox"
            name="desktop-notifications"
            checked={prefs.desktop}
            disabled={permission === 'unsupported'}
            onChange={(e) => void setDesktop(e.target.checked)}
          />
          Desktop notifications while Natter is in the background
        </label>
        <label className="check">
          <input
            type="checkbox"
            name="notification-sound"
            checked={prefs.sound}
            onChange={(e) => chat.notifications.setPrefs({ sound: e.target.checked })}
          />
          Play a sound with notifications
        </label>
        <label className="check">
          <input
            type="checkbox"
            name="push-notifications"
            checked={push === true}
            disabled={busy || push === null || !pushSupported()}
            onChange={(e) => void togglePush(e.target.checked)}
          />
          Push notifications on this device (while Natter is closed or you are away)
        </label>
        <p className="muted small">
          Nothing notifies you while your status is Do Not Disturb. What each server and channel tells you of
          is in its bell menu.
        </p>
        {permission === 'denied' && (
          <p className="muted small">
            The browser blocks notifications from Natter; allow them in its site settings.
          </p>
        )}
        {note && (
          <p className="muted small" role="status">
            {note}
          </p>
        )}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
      </div>
    </Modal>
  );
}
