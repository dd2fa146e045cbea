// @vitest-environment jsdom
import { act, createElement } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfirmDialog, givenReason } from './Confirm';
import { Modal } from './Modal';

// jsdom has <dialog> but not its modal methods: open and close it as a browser would.
beforeAll(() => {
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
  HTMLDialogElement.prototype.showModal = function (this: HTMLDialogElement) {
    this.open = true;
  };
  HTMLDialogElement.prototype.close = function (this: HTMLDialogElement) {
    this.open = false;
  };
});

let host: HTMLDivElement;
let root: Root;
beforeEach(() => {
  host = document.createElement('div');
  document.body.append(host);
  root = createRoot(host);
});
afterEach(() => {
  act(() => root.unmount());
  host.remove();
});

const button = (name: string) =>
  [...host.querySelectorAll('button')].find((b) => b.textContent === name) as HTMLButtonElement;
const dialogs = () => [...host.querySelectorAll('dialog')];
/** What Escape does to a modal dialog: a `cancel` event on it. */
const escape = (d: HTMLDialogElement) => d.dispatchEvent(new Event('cancel', { cancelable: true }));
const settle = () => act(() => new Promise((r) => setTimeout(r, 0)));

function show(props: Partial<Parameters<typeof ConfirmDialog>[0]> = {}) {
  const onConfirm = vi.fn(() => Promise.resolve());
  const onClose = vi.fn();
  act(() =>
    root.render(
      createElement(ConfirmDialog, {
        title: 'Kick Carol?',
        confirm: 'Kick Carol',
        onConfirm,
        onClose,
        children: createElement('p', null, 'Carol leaves the server.'),
        ...props,
      }),
    ),
  );
  return { onConfirm: (props.onConfirm as typeof onConfirm) ?? onConfirm, onClose };
}

describe('the confirmation dialog', () => {
  it('is titled by its question, says what happens, and starts on Cancel', () => {
    show();
    const d = dialogs()[0];
    expect(d.open).toBe(true);
    expect(document.getElementById(d.getAttribute('aria-labelledby')!)?.textContent).toBe('Kick Carol?');
    expect(d.textContent).toContain('Carol leaves the server.');
    expect(document.activeElement).toBe(button('Cancel'));
  });

  it('does nothing on Cancel, Escape or the close button', () => {
    const { onConfirm, onClose } = show();
    act(() => button('Cancel').click());
    act(() => void escape(dialogs()[0]));
    act(() => (host.querySelector('button[aria-label="Close"]') as HTMLButtonElement).click());
    expect(onConfirm).not.toHaveBeenCalled();
    expect(onClose).toHaveBeenCalledTimes(3);
  });

  it('acts on its button, with the reason trimmed, then closes', async () => {
    const { onConfirm, onClose } = show({ reason: { label: 'Reason for the kick', initial: '  spam ' } });
    act(() => button('Kick Carol').click());
    await settle();
    expect(onConfirm).toHaveBeenCalledWith('spam');
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it('passes no reason when none is asked for', async () => {
    const { onConfirm } = show();
    act(() => button('Kick Carol').click());
    await settle();
    expect(onConfirm).toHaveBeenCalledWith(undefined);
  });

  it('stays open and says why when the act fails', async () => {
    const onConfirm = vi.fn(() => Promise.reject(new Error('You may not kick the owner.')));
    const { onClose } = show({ onConfirm });
    act(() => button('Kick Carol').click());
    await settle();
    expect(onClose).not.toHaveBeenCalled();
    expect(host.querySelector('[role="alert"]')?.textContent).toBe('You may not kick the owner.');
    expect(button('Kick Carol').disabled).toBe(false);
  });

  it('cancelled over another dialog, leaves that one open', () => {
    const outer = vi.fn();
    const inner = vi.fn();
    act(() =>
      root.render(
        createElement(Modal, {
          title: 'Manage Carol',
          onClose: outer,
          children: createElement(ConfirmDialog, {
            title: 'Kick Carol?',
            confirm: 'Kick Carol',
            onConfirm: () => Promise.resolve(),
            onClose: inner,
            children: null,
          }),
        }),
      ),
    );
    const [manage, kick] = dialogs();
    expect(manage.getAttribute('aria-labelledby')).not.toBe(kick.getAttribute('aria-labelledby'));
    act(() => void escape(kick));
    act(() => void kick.dispatchEvent(new Event('close')));
    expect(inner).toHaveBeenCalled();
    expect(outer).not.toHaveBeenCalled();
  });
});

describe('a reason', () => {
  it('is sent trimmed, and not at all when blank', () => {
    expect(givenReason('  spam\n')).toBe('spam');
    expect(givenReason('   ')).toBeUndefined();
    expect(givenReason('')).toBeUndefined();
  });
});
