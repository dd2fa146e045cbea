// @vitest-environment jsdom
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderMarkdown } from './markdown';

const names = {
  user: (id: string) => (id === '1' ? 'ann' : undefined),
  role: (id: string) => (id === '7' ? 'helpers' : undefined),
  me: '1',
};

/** The elements and attributes the HTML makes, parsed as a browser would. */
function parse(html: string): HTMLElement {
  const root = document.createElement('div');
  root.innerHTML = html;
  return root;
}

const ALLOWED = new Set([
  'P',
  'BR',
  'STRONG',
  'EM',
  'U',
  'S',
  'CODE',
  'PRE',
  'BLOCKQUOTE',
  'UL',
  'OL',
  'LI',
  'H1',
  'H2',
  'H3',
  'H4',
  'H5',
  'H6',
  'A',
  'SPAN',
]);
const ALLOWED_ATTRS = new Set([
  'href',
  'target',
  'rel',
  'class',
  'data-user-id',
  'role',
  'tabindex',
  'start',
]);

/** Fails when the rendered HTML holds anything a message must never produce. */
function assertSafe(text: string) {
  const html = renderMarkdown(text, names);
  const root = parse(html);
  for (const el of root.querySelectorAll('*')) {
    expect(ALLOWED.has(el.tagName), `<${el.tagName}> from ${JSON.stringify(text)}`).toBe(true);
    for (const attr of el.attributes) {
      expect(ALLOWED_ATTRS.has(attr.name), `${attr.name} from ${JSON.stringify(text)}`).toBe(true);
      expect(attr.name.startsWith('on')).toBe(false);
    }
    const href = el.getAttribute('href');
    if (href !== null) expect(href, JSON.stringify(text)).toMatch(/^https?:\/\//i);
    if (el.tagName === 'SPAN' && el.getAttribute('class')) {
      expect(el.getAttribute('class')).toMatch(/^(hljs[-\w ]*|language-\w+|mention[\w ]*|spoiler)$/);
    }
  }
}

describe('message Markdown', () => {
  it('renders the Discord subset', () => {
    const html = renderMarkdown(
      '**bold** *it* __under__ ~~gone~~ `code` ||secret||\n\n> quoted\n# Title\n- one\n- two\n\n[site](https://example.com)',
    );
    for (const part of [
      '<strong>bold</strong>',
      '<em>it</em>',
      '<u>under</u>',
      '<s>gone</s>',
      '<code>code</code>',
      '<span class="spoiler">secret</span>',
      '<blockquote>',
      '<h1>Title</h1>',
      '<li>one</li>',
      '<a href="https://example.com/" target="_blank" rel="noopener noreferrer nofollow">site</a>',
    ]) {
      expect(html).toContain(part);
    }
  });

  it('shows a one-paragraph message as its text alone', () => {
    expect(renderMarkdown('just **this**')).toBe('just <strong>this</strong>');
  });

  it('highlights a fenced code block in a known language', () => {
    const html = renderMarkdown('```rust\nfn main() { let x = 1; }\n```');
    expect(html).toContain('<pre><code class="language-rust">');
    expect(html).toContain('<span class="hljs-keyword">fn</span>');
  });

  it('keeps raw HTML and script as text', () => {
    const html = renderMarkdown('<script>alert(1)</script><img src=x onerror=alert(1)>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(parse(html).querySelector('script, img')).toBeNull();
  });

  it('links only http and https', () => {
    const html = renderMarkdown('[a](javascript:alert(1)) [b](data:text/html,x) https://ok.example/x');
    const hrefs = [...parse(html).querySelectorAll('a')].map((a) => a.getAttribute('href'));
    expect(hrefs).toEqual(['https://ok.example/x']);
  });

  it('shows mentions as chips with names, the reader highlighted', () => {
    const root = parse(renderMarkdown('hi <@1> <@2> <@&7> @everyone `<@1>`', names));
    const chips = [...root.querySelectorAll('.mention')].map((c) => [c.className, c.textContent]);
    expect(chips).toEqual([
      ['mention user me', '@ann'],
      ['mention user', '@unknown user'],
      ['mention role', '@helpers'],
      ['mention everyone', '@everyone'],
    ]);
  });

  it('never produces script, an event handler, a javascript: URL or an unescaped attribute', () => {
    const pieces = fc.constantFrom(
      '<',
      '>',
      '"',
      "'",
      '`',
      '```',
      '*',
      '_',
      '__',
      '~~',
      '||',
      '[',
      ']',
      '(',
      ')',
      '\n',
      '> ',
      '# ',
      '- ',
      '1. ',
      '<@1>',
      '<@&7>',
      '@here',
      'javascript:',
      'JaVaScRiPt:',
      'data:',
      'http://',
      'https://x.io/',
      '<script>',
      '</script>',
      'onerror=',
      'onclick="x"',
      '<img src=x>',
      '&',
      '&#x3C;',
      '\\',
      ' ',
      'a',
      'x" onmouseover="y',
      '<a href="javascript:1">',
      '```js\n',
      '%22',
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(pieces, fc.string({ maxLength: 6 })), { maxLength: 40 }), (parts) => {
        assertSafe(parts.join(''));
      }),
      { numRuns: 1500 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => assertSafe(s)),
      { numRuns: 500 },
    );
  });
});
