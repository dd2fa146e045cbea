import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { useEffect, useState, useSyncExternalStore } from 'react';
import type { User } from './api/types';
import { session } from './auth/session';
import { ChatContext } from './chat/hooks';
import { Chat } from './chat/store';
import { AuthScreen } from './ui/AuthScreen';
import { Shell } from './ui/Shell';

function useSignedInUserId(): string | null {
  return useSyncExternalStore(
    (fn) => session.subscribe(fn),
    () => session.user?.id ?? null,
  );
}

export function App() {
  const userId = useSignedInUserId();
  if (!userId) return <AuthScreen />;
  // A new chat (cache, socket) per signed-in user: nothing of one account leaks into the next.
  return <SignedIn key={userId} user={session.user!} />;
}

function SignedIn({ user }: { user: User }) {
  const [qc] = useState(
    () => new QueryClient({ defaultOptions: { queries: { refetchOnWindowFocus: false } } }),
  );
  const [chat, setChat] = useState<Chat | null>(null);
  useEffect(() => {
    // Made in the effect so React's development double-mount gets a fresh socket each time.
    const c = new Chat(qc, user);
    c.start();
    setChat(c);
    return () => c.stop();
    // `user` is fixed for this component: App keys it by the user id.
  }, [qc]); // eslint-disable-line react-hooks/exhaustive-deps
  if (!chat) return null;
  return (
    <QueryClientProvider client={qc}>
      <ChatContext.Provider value={chat}>
        <Shell />
      </ChatContext.Provider>
    </QueryClientProvider>
  );
}
