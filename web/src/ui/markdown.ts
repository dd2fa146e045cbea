// Discord's Markdown subset, rendered by markdown-it with raw HTML off: bold, italic, underline
// (`__x__`), strikethrough, inline code, fenced code blocks (highlighted by highlight.js), quotes,
// spoilers (`||x||`), lists, headings and masked links (http and https only), and mentions
// (`<@id>`, `<@&id>`, `@everyone`, `@here`) as chips. markdown-it escapes every text and attribute
// it writes; nothing a message says can become markup, a script, an event handler or a
// javascript: URL (markdown.test.ts checks that property on generated inputs).
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import cpp from 'highlight.js/lib/languages/cpp';
import css from 'highlight.js/lib/languages/css';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';
import MarkdownIt from 'markdown-it';
import type { StateInline } from 'markdown-it';

for (const [name, lang] of Object.entries({
  bash,
  cpp,
  css,
  go,
  java,
  javascript,
  json,
  python,
  rust,
  sql,
  typescript,
  xml,
  yaml,
})) {
  hljs.registerLanguage(name, lang);
}

/** How mentions show: names for ids, and whether one is the reader (highlighted). */
export interface MentionNames {
  user: (id: string) => string | undefined;
  role: (id: string) => string | undefined;
  me?: string;
}

const md = new MarkdownIt('zero', { html: false, linkify: true, breaks: true, typographer: false });
md.enable([
  'blockquote',
  'fence',
  'heading',
  'list',
  'paragraph',
  'backticks',
  'emphasis',
  'strikethrough',
  'escape',
  'link',
  'linkify',
  'newline',
  'text',
  'balance_pairs',
  'fragments_join',
  'text_join',
]);
md.set({
  highlight: (code: string, lang: string) => {
    const language = lang && hljs.getLanguage(lang) ? lang : undefined;
    if (!language) return '';
    // highlight.js escapes the code it wraps in its spans.
    return hljs.highlight(code, { language, ignoreIllegals: true }).value;
  },
});

// Only http and https links (masked or bare); anything else stays text.
md.validateLink = (url: string) => /^https?:\/\//i.test(url.trim());

// Links as browsers write them (`https://example.com/`), like the address bar.
const normalizeLink = md.normalizeLink.bind(md);
md.normalizeLink = (url: string) => {
  try {
    const u = new URL(url);
    if (u.protocol === 'http:' || u.protocol === 'https:') return u.href;
  } catch {
    // Not a URL: markdown-it's own normalisation, then validateLink refuses it.
  }
  return normalizeLink(url);
};

// `__x__` is underline on Discord, `**x**` bold.
md.renderer.rules.strong_open = (tokens, i) => (tokens[i].markup === '__' ? '<u>' : '<strong>');
md.renderer.rules.strong_close = (tokens, i) => (tokens[i].markup === '__' ? '</u>' : '</strong>');

// Links open in a new tab and tell the target nothing.
md.renderer.rules.link_open = (tokens, i, options, _env, self) => {
  tokens[i].attrSet('target', '_blank');
  tokens[i].attrSet('rel', 'noopener noreferrer nofollow');
  return self.renderToken(tokens, i, options);
};

/** `||spoiler||`: hidden until clicked (the content is parsed as Markdown too). */
function spoiler(state: StateInline, silent: boolean): boolean {
  const start = state.pos;
  if (state.src.charCodeAt(start) !== 0x7c || state.src.charCodeAt(start + 1) !== 0x7c) return false;
  const end = state.src.indexOf('||', start + 2);
  if (end < 0 || end === start + 2 || end > state.posMax) return false;
  if (!silent) {
    const max = state.posMax;
    state.push('spoiler_open', 'span', 1).attrSet('class', 'spoiler');
    state.pos = start + 2;
    state.posMax = end;
    state.md.inline.tokenize(state);
    state.push('spoiler_close', 'span', -1);
    state.posMax = max;
  }
  state.pos = end + 2;
  return true;
}
md.inline.ruler.before('emphasis', 'spoiler', spoiler);

// markdown-it's plain-text rule, stopping also at `|` (its own stops at Markdown's punctuation
// only), so a spoiler's bars are seen wherever they are.
const STOPS = new Set('\n!#$%&*+-:<=>@[\\]^_`{}~|'.split('').map((c) => c.charCodeAt(0)));
md.inline.ruler.at('text', (state: StateInline, silent: boolean) => {
  let pos = state.pos;
  while (pos < state.posMax && !STOPS.has(state.src.charCodeAt(pos))) pos++;
  if (pos === state.pos) return false;
  if (!silent) state.pending += state.src.slice(state.pos, pos);
  state.pos = pos;
  return true;
});

const MENTION_RE = /^(?:<@(!|&)?(\d{1,20})>|@(everyone|here)\b)/;

/** `<@id>`, `<@!id>`, `<@&id>`, `@everyone`, `@here`: a mention token, shown as a chip. */
function mention(state: StateInline, silent: boolean): boolean {
  const c = state.src.charCodeAt(state.pos);
  if (c !== 0x3c && c !== 0x40) return false;
  const match = MENTION_RE.exec(state.src.slice(state.pos, state.posMax));
  if (!match) return false;
  if (!silent) {
    const token = state.push('mention', '', 0);
    token.meta = match[3]
      ? { kind: 'everyone', id: match[3] }
      : { kind: match[1] === '&' ? 'role' : 'user', id: match[2] };
  }
  state.pos += match[0].length;
  return true;
}
md.inline.ruler.before('emphasis', 'mention', mention);

md.renderer.rules.mention = (tokens, i, _options, env) => {
  const { kind, id } = tokens[i].meta as { kind: string; id: string };
  const names = (env as { names?: MentionNames } | undefined)?.names;
  const escape = md.utils.escapeHtml;
  if (kind === 'everyone') return `<span class="mention everyone">@${escape(id)}</span>`;
  if (kind === 'role') {
    const role = names?.role(id);
    return `<span class="mention role">@${escape(role ?? 'unknown role')}</span>`;
  }
  const name = names?.user(id);
  const me = names?.me === id ? ' me' : '';
  // Digits only (the rule's match), so the attribute needs no escaping; escaped anyway.
  return `<span class="mention user${me}" data-user-id="${escape(id)}" role="button" tabindex="0">@${escape(name ?? 'unknown user')}</span>`;
};

/**
 * A message's text as safe HTML. A message of one paragraph (most) is its inline content alone,
 * without a `<p>`, so it reads (and copies) as the text it is.
 */
export function renderMarkdown(text: string, names?: MentionNames): string {
  const env = { names };
  const tokens = md.parse(text, env);
  if (tokens.length === 3 && tokens[0].type === 'paragraph_open' && tokens[2].type === 'paragraph_close')
    return md.renderer.render([tokens[1]], md.options, env);
  return md.renderer.render(tokens, md.options, env).trimEnd();
}
