// Message text as Discord's Markdown subset (markdown.ts: raw HTML off, every text and attribute
// escaped by the parser, links http and https only). Spoilers open on click; a click on a user's
// mention chip names them to `onUser` (their profile card).
import { useMemo } from 'react';
import { renderMarkdown, type MentionNames } from './markdown';

export function RichText({
  text,
  names,
  onUser,
}: {
  text: string;
  names?: MentionNames;
  onUser?: (id: string, at: HTMLElement) => void;
}) {
  const html = useMemo(() => renderMarkdown(text, names), [text, names]);
  const open = (target: HTMLElement) => {
    const spoiler = target.closest('.spoiler');
    if (spoiler) spoiler.classList.add('shown');
    const chip = target.closest<HTMLElement>('[data-user-id]');
    if (chip && onUser) onUser(chip.dataset.userId!, chip);
  };
  return (
    <div
      className="markdown"
      onClick={(e) => open(e.target as HTMLElement)}
      onKeyDown={(e) => {
        if (e.key === 'Enter') open(e.target as HTMLElement);
      }}
      // Safe: markdown-it with `html: false` escapes everything the message says (see markdown.ts
      // and its property test).
      dangerouslySetInnerHTML={{ __html: html }}
    />
  );
}
