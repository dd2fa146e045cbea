//! Questions asked together: whatever a service asks another while its earlier questions are in
//! flight waits, and goes in the next question with everything else waiting, up to a limit. A
//! quiet service asks at once (a question of one); a busy one asks full questions, so the other
//! side reads what they share once rather than once each (the notification worker's question
//! about new messages, an edge's about the sessions starting there).
//!
//! The answer may cover only the first of the questions asked (a whole answer would be too big
//! for one message): the rest are asked again, at the front of the next question.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

type Waiting<Q, A> = (Q, oneshot::Sender<Result<A, String>>);

/// Asks questions of type `Q` together, each answered with an `A`; cheap to clone. The task
/// gathering them stops when every clone is dropped.
pub struct Gather<Q, A> {
    queue: mpsc::Sender<Waiting<Q, A>>,
}

impl<Q, A> Clone for Gather<Q, A> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<Q, A> Gather<Q, A>
where
    Q: Clone + Send + 'static,
    A: Send + 'static,
{
    /// Starts gathering: at most `most` questions in one, at most `in_flight` of those at once.
    /// `ask` answers the first `answers.len()` of the questions it is given, in order (at least
    /// one, or an error that every one of them gets).
    pub fn start<F, Fut>(most: usize, in_flight: usize, ask: F) -> Self
    where
        F: Fn(Vec<Q>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<A>, String>> + Send + 'static,
    {
        assert!(most > 0 && in_flight > 0, "a question holds one at least");
        let (queue, waiting) = mpsc::channel(most * in_flight * 2);
        tokio::spawn(gather(waiting, most, in_flight, Arc::new(ask)));
        Self { queue }
    }

    /// Asks `question` with whatever else is waiting.
    pub async fn ask(&self, question: Q) -> Result<A, String> {
        let stopped = || "the gathered questions stopped".to_owned();
        let (answer, answered) = oneshot::channel();
        self.queue
            .send((question, answer))
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

async fn gather<Q, A, F, Fut>(
    mut queue: mpsc::Receiver<Waiting<Q, A>>,
    most: usize,
    in_flight: usize,
    ask: Arc<F>,
) where
    Q: Clone + Send + 'static,
    A: Send + 'static,
    F: Fn(Vec<Q>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<A>, String>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(in_flight));
    loop {
        // Questions wait in the queue while every permit is out, and go together after.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let mut waiting = Vec::with_capacity(most);
        if queue.recv_many(&mut waiting, most).await == 0 {
            return;
        }
        let ask = ask.clone();
        tokio::spawn(async move {
            answer(waiting, ask.as_ref()).await;
            drop(permit);
        });
    }
}

/// Asks until every one of `waiting` has its answer or the error.
async fn answer<Q, A, F, Fut>(mut waiting: Vec<Waiting<Q, A>>, ask: &F)
where
    Q: Clone,
    F: Fn(Vec<Q>) -> Fut,
    Fut: Future<Output = Result<Vec<A>, String>>,
{
    while !waiting.is_empty() {
        let questions = waiting
            .iter()
            .map(|(question, _)| question.clone())
            .collect();
        match ask(questions).await {
            Ok(answers) if !answers.is_empty() => {
                let answered = answers.len().min(waiting.len());
                for ((_, reply), answer) in waiting.drain(..answered).zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            outcome => {
                let why = outcome
                    .err()
                    .unwrap_or_else(|| "answered none of them".to_owned());
                for (_, reply) in waiting.drain(..) {
                    let _ = reply.send(Err(why.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn questions_asked_meanwhile_go_together_and_a_short_answer_is_asked_again() {
        // Every question is answered with its double, two at a time at most.
        let asked: Arc<Mutex<Vec<Vec<u32>>>> = Arc::default();
        let seen = asked.clone();
        let (hold, held) = tokio::sync::watch::channel(false);
        let gather = Gather::start(8, 1, move |questions: Vec<u32>| {
            seen.lock().unwrap().push(questions.clone());
            let mut held = held.clone();
            async move {
                held.wait_for(|go| *go).await.unwrap();
                Ok(questions.iter().take(2).map(|q| q * 2).collect())
            }
        });
        let first = tokio::spawn({
            let gather = gather.clone();
            async move { gather.ask(1).await }
        });
        while asked.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let later: Vec<_> = (2..=4)
            .map(|q| {
                let gather = gather.clone();
                tokio::spawn(async move { gather.ask(q).await })
            })
            .collect();
        // The three wait for the first question's answer, then go in one.
        while gather.queue.capacity() > gather.queue.max_capacity() - 3 {
            tokio::task::yield_now().await;
        }
        hold.send(true).unwrap();
        assert_eq!(first.await.unwrap(), Ok(2));
        let mut answers = Vec::new();
        for task in later {
            answers.push(task.await.unwrap().unwrap());
        }
        assert_eq!(answers, [4, 6, 8]);
        assert_eq!(*asked.lock().unwrap(), [vec![1], vec![2, 3, 4], vec![4]]);
    }

    #[tokio::test]
    async fn an_error_reaches_every_question_in_it() {
        let gather = Gather::start(4, 2, |_: Vec<u32>| async {
            Err::<Vec<u32>, _>("no".to_owned())
        });
        assert_eq!(gather.ask(1).await, Err("no".to_owned()));
        let none = Gather::start(4, 2, |_: Vec<u32>| async {
            Ok::<Vec<u32>, String>(Vec::new())
        });
        assert_eq!(none.ask(1).await, Err("answered none of them".to_owned()));
    }
}
