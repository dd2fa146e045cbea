//! A session's queue of runs: the hub hands runs out to it from any thread, the session takes
//! them in order. A mutex around a `VecDeque` and one waker, so an idle session's queue is one
//! small allocation; tokio's unbounded channel, which it replaces, took 0.8 KB a session (a
//! channel padded to cache lines and a first block of 32 slots; docs/BENCHMARKS.md, "idle").
//! Bounded by the hub's count of the events waiting ([`crate::fanout::Kick`]), not here.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

use crate::fanout::Run;

/// The most slots an emptied queue keeps: what a burst grew beyond it is given back.
const KEEP_SLOTS: usize = 16;

struct Shared {
    runs: Mutex<Runs>,
    /// The session's task while it waits for a run.
    waiter: AtomicWaker,
}

struct Runs {
    queue: VecDeque<Run>,
    /// The session has ended: nothing more is queued.
    closed: bool,
}

impl Shared {
    fn runs(&self) -> MutexGuard<'_, Runs> {
        self.runs
            .lock()
            .expect("no code panics while holding a session's queue")
    }
}

/// The hub's end of a session's queue; cheap to clone.
#[derive(Clone)]
pub struct Sender(Arc<Shared>);

/// The session's end of its queue.
pub struct Receiver(Arc<Shared>);

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("queue::Sender")
    }
}

/// A session's queue: the hub's end and the session's.
pub fn queue() -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        runs: Mutex::new(Runs {
            queue: VecDeque::new(),
            closed: false,
        }),
        waiter: AtomicWaker::new(),
    });
    (Sender(Arc::clone(&shared)), Receiver(shared))
}

impl Sender {
    /// Queues `run` behind what is waiting: false once the session has ended.
    pub fn send(&self, run: Run) -> bool {
        {
            let mut runs = self.0.runs();
            if runs.closed {
                return false;
            }
            runs.queue.push_back(run);
        }
        self.0.waiter.wake();
        true
    }
}

impl Receiver {
    /// The oldest run waiting, if any.
    pub fn try_recv(&mut self) -> Option<Run> {
        let mut runs = self.0.runs();
        let run = runs.queue.pop_front();
        if runs.queue.is_empty() && runs.queue.capacity() > KEEP_SLOTS {
            runs.queue = VecDeque::new();
        }
        run
    }

    /// The oldest run, once there is one. Cancel-safe: dropped before it is ready, it took
    /// nothing.
    pub async fn recv(&mut self) -> Run {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Run> {
        if let Some(run) = self.try_recv() {
            return Poll::Ready(run);
        }
        self.0.waiter.register(cx.waker());
        // A run queued between the look and the registration woke nobody: look again.
        match self.try_recv() {
            Some(run) => Poll::Ready(run),
            None => Poll::Pending,
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let waiting = {
            let mut runs = self.0.runs();
            runs.closed = true;
            std::mem::take(&mut runs.queue)
        };
        drop(waiting);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use proto::Snowflake;
    use proto::api::messages::Typing;
    use proto::events::Event;

    use super::*;
    use crate::fanout::Delivery;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A run of `n` events (someone typing).
    fn run(n: usize) -> Run {
        let typing = Event::TypingStart(Typing {
            channel_id: Snowflake::from_u64(1),
            user_id: Snowflake::from_u64(2),
            timestamp: 0,
        });
        Run::new(vec![Delivery::new(None, typing); n])
    }

    #[test]
    fn runs_come_out_in_the_order_they_went_in() {
        let (tx, mut rx) = queue();
        for n in 1..=3 {
            assert!(tx.send(run(n)));
        }
        let lengths: Vec<usize> = std::iter::from_fn(|| rx.try_recv())
            .map(|r| r.len())
            .collect();
        assert_eq!(lengths, [1, 2, 3]);
    }

    #[test]
    fn a_waiting_session_is_woken_by_the_next_run() {
        let (tx, mut rx) = queue();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_recv(&mut cx).is_pending());
        assert!(tx.send(run(1)));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken once");
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(r) if r.len() == 1));
    }

    #[test]
    fn nothing_is_queued_once_the_session_has_ended() {
        let (tx, rx) = queue();
        assert!(tx.send(run(1)));
        drop(rx);
        assert!(!tx.send(run(1)), "the session is gone");
        assert!(tx.0.runs().queue.is_empty(), "what waited is let go");
    }

    #[test]
    fn an_emptied_queue_gives_back_what_a_burst_grew() {
        let (tx, mut rx) = queue();
        for _ in 0..100 {
            tx.send(run(1));
        }
        while rx.try_recv().is_some() {}
        assert!(tx.0.runs().queue.capacity() <= KEEP_SLOTS);
    }
}
