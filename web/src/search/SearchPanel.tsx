// Discord's search, top right of a conversation: the box reads words and filters (search/query.ts),
// the panel beside the messages shows each hit with the messages around it, pages through the
// results, and a click opens the channel at the hit (`openMessage`).
import { useQueries, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import type { Channel, SearchMessage } from '../api/types';
import { useChannels, useChat, useUsers } from '../chat/hooks';
import { channelTitle, displayName } from '../chat/store';
import { idTime } from '../chat/snowflake';
import { RichText } from '../ui/RichText';
import { openMessage } from '../ui/Shell';
import { parseSearch } from './query';

const PAGE = 25;

/** The box in a conversation's header: Enter searches the server (or the DM or group). */
export function SearchBox({ channel, onSearch }: { channel: Channel; onSearch: (text: string) => void }) {
  const [text, setText] = useState('');
  const where = channel.guild_id ? 'server' : channel.kind === 'dm' ? 'conversation' : 'group';
  return (
    <form
      className="search-box"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        if (text.trim()) onSearch(text.trim());
      }}
    >
      <input
        type="search"
        aria-label={`Search this ${where}`}
        placeholder="Search"
        value={text}
        maxLength={600}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') setText('');
        }}
      />
    </form>
  );
}

export function SearchPanel({
  channel,
  text,
  onClose,
}: {
  channel: Channel;
  text: string;
  onClose: () => void;
}) {
  const chat = useChat();
  const users = useUsers();
  const channels = useChannels();
  const [offset, setOffset] = useState(0);
  const searched = channel.guild_id ? channels.filter((c) => c.guild_id === channel.guild_id) : [channel];
  const channelNamed = (name: string) => searched.find((c) => c.name?.toLowerCase() === name)?.id;
  const known = (name: string) => Object.values(users).find((u) => u.username.toLowerCase() === name)?.id;
  // People named but never met here (no message or list of theirs loaded) are asked of auth.
  const unknown = new Set<string>();
  parseSearch(text, {
    user: (name) => {
      const id = known(name);
      if (!id) unknown.add(name);
      return id;
    },
    channel: channelNamed,
  });
  const lookups = useQueries({
    queries: [...unknown].map((name) => ({
      queryKey: ['user-by-name', name],
      queryFn: () => chat.userByName(name),
      staleTime: 60_000,
      retry: false,
    })),
  });
  const found = new Map([...unknown].map((name, i) => [name, lookups[i]?.data?.id]));
  const resolving = lookups.some((q) => q.isPending);
  const parsed = parseSearch(text, { user: (name) => known(name) ?? found.get(name), channel: channelNamed });
  const params = parsed.params;
  const problems = resolving ? [] : parsed.problems;
  const scope = channel.guild_id ? { guild: channel.guild_id } : { channel: channel.id };
  const { data, isError, isFetching } = useQuery({
    queryKey: ['search', scope, params, offset],
    queryFn: () => chat.search(scope, params, offset),
    enabled: params.length > 0 && problems.length === 0 && !resolving,
    staleTime: 10_000,
    retry: false,
  });
  const total = data?.total_results ?? 0;
  const channelName = (id: string) => {
    const c = channels.find((x) => x.id === id);
    return c ? channelTitle(c, chat.me.id) : '';
  };
  return (
    <aside className="search-panel" role="dialog" aria-label="Search results">
      <header>
        <h2>{data ? `${total} ${total === 1 ? 'result' : 'results'}` : 'Searching…'}</h2>
        <button className="icon" aria-label="Close search" onClick={onClose}>
          ✕
        </button>
      </header>
      {problems.length > 0 && <p className="form-error">{problems.join('; ')}</p>}
      {params.length === 0 && problems.length === 0 && (
        <p className="muted">Type words or filters to search.</p>
      )}
      {isError && <p className="form-error">Search is not available right now. Try again shortly.</p>}
      {data && total === 0 && <p className="muted">Nothing matches.</p>}
      <ol className="search-results" aria-busy={isFetching}>
        {data?.messages.map((group) => {
          const hit = group.find((m) => m.hit) ?? group[0];
          // Oldest first, as the conversation reads.
          const ordered: SearchMessage[] = [...group].reverse();
          return (
            <li key={hit.id} className="search-result">
              <div className="meta">
                {channel.guild_id && <span className="muted">#{channelName(hit.channel_id)}</span>}
                <button
                  className="link"
                  aria-label={`Jump to ${displayName(users[hit.author_id])}'s message`}
                  onClick={() => openMessage(hit.channel_id, hit.id)}
                >
                  Jump
                </button>
              </div>
              {ordered.map((m) => (
                <div key={m.id} className={m.hit ? 'search-hit' : 'search-context'}>
                  <span className="author">{displayName(users[m.author_id])}</span>{' '}
                  <time className="muted" dateTime={new Date(idTime(m.id)).toISOString()}>
                    {new Date(idTime(m.id)).toLocaleString()}
                  </time>
                  <RichText text={m.content} />
                </div>
              ))}
            </li>
          );
        })}
      </ol>
      {total > PAGE && (
        <nav className="search-pages" aria-label="Result pages">
          <button
            className="link"
            disabled={offset === 0}
            onClick={() => setOffset((o) => Math.max(0, o - PAGE))}
          >
            Newer
          </button>
          <span className="muted">
            {offset + 1}–{Math.min(offset + PAGE, total)} of {total}
          </span>
          <button
            className="link"
            disabled={offset + PAGE >= total || offset + PAGE > 5000}
            onClick={() => setOffset((o) => o + PAGE)}
          >
            Older
          </button>
        </nav>
      )}
    </aside>
  );
}
