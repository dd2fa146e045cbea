// The Unicode emoji list with GitHub's shortcodes (emojibase-data), loaded on first use: a
// separate chunk, so the first load of the app does not carry it.
export interface EmojiEntry {
  unicode: string;
  label: string;
  /** Shortcodes without colons (`smile`, `+1`). */
  names: string[];
}

let loading: Promise<EmojiEntry[]> | null = null;

export function loadEmoji(): Promise<EmojiEntry[]> {
  loading ??= Promise.all([
    import('emojibase-data/en/compact.json'),
    import('emojibase-data/en/shortcodes/github.json'),
  ]).then(([compact, codes]) => {
    const byHex = codes.default as Record<string, string | string[]>;
    return (compact.default as Array<{ hexcode: string; label: string; unicode: string; group?: number }>)
      .filter((e) => e.group !== 2 || e.label.length > 0) // everything listed, component group included
      .map((e) => {
        const c = byHex[e.hexcode];
        return { unicode: e.unicode, label: e.label, names: c ? (Array.isArray(c) ? c : [c]) : [] };
      })
      .filter((e) => e.names.length > 0);
  });
  return loading;
}

/** Emoji whose shortcode starts with (then contains) `query`, at most `limit`. */
export function searchEmoji(list: EmojiEntry[], query: string, limit = 8): EmojiEntry[] {
  const q = query.toLowerCase();
  if (!q) return list.slice(0, limit);
  const starts = list.filter((e) => e.names.some((n) => n.startsWith(q)));
  const contains = list.filter(
    (e) => !starts.includes(e) && (e.names.some((n) => n.includes(q)) || e.label.includes(q)),
  );
  return [...starts, ...contains].slice(0, limit);
}

/** The `:query` being typed at the end of `text`, if any (two characters at least). */
export function shortcodeAt(text: string): string | null {
  const m = /(?:^|\s):([a-z0-9_+-]{2,})$/i.exec(text);
  return m ? m[1] : null;
}
