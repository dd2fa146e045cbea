//! The notification worker's question to auth (`{p}.auth.notify`): the messages handled at the
//! same time are asked about together, in one request, so that auth reads what they share (a busy
//! channel, its settings, the people a plain message may concern) once rather than per message.
//!
//! One question is in flight at a time; whatever is asked meanwhile waits for the next one (up
//! to [`MAX_NOTIFY_QUERIES`]). A busy stream makes full questions, a quiet one asks at once.

use std::time::Duration;

use prometheus::IntCounter;
use proto::access::{
    MAX_NOTIFY_QUERIES, NotifyAnswer, NotifyAnswers, NotifyQueries, NotifyQuery, Reply,
};
use proto::subjects::Subjects;
use tokio::sync::{mpsc, oneshot};

/// How long auth gets to answer one question.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

type Waiting = (NotifyQuery, oneshot::Sender<Result<NotifyAnswer, String>>);

/// Asks auth whom messages concern; cheap to clone.
#[derive(Clone)]
pub struct Asker {
    queue: mpsc::Sender<Waiting>,
}

impl Asker {
    /// Starts asking on `nats`, counting each question to auth in `questions`.
    pub fn start(nats: async_nats::Client, subjects: &Subjects, questions: IntCounter) -> Self {
        let (queue, waiting) = mpsc::channel(MAX_NOTIFY_QUERIES * 4);
        tokio::spawn(gather(nats, subjects.auth_notify(), waiting, questions));
        Self { queue }
    }

    /// Whom `query`'s message concerns (this page of them).
    pub async fn ask(&self, query: NotifyQuery) -> Result<NotifyAnswer, String> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send((query, answer))
            .await
            .map_err(|_| "the question to auth stopped".to_owned())?;
        answered
            .await
            .map_err(|_| "the question to auth stopped".to_owned())?
    }
}

/// Asks about everything waiting, one question at a time, until every [`Asker`] is dropped.
async fn gather(
    nats: async_nats::Client,
    subject: String,
    mut queue: mpsc::Receiver<Waiting>,
    questions: IntCounter,
) {
    let mut waiting = Vec::with_capacity(MAX_NOTIFY_QUERIES);
    while queue.recv_many(&mut waiting, MAX_NOTIFY_QUERIES).await > 0 {
        // Auth may answer fewer than asked (a big answer): the rest are asked again.
        while !waiting.is_empty() {
            questions.inc();
            let queries = waiting.iter().map(|(query, _)| query.clone()).collect();
            match ask(&nats, &subject, NotifyQueries { queries }).await {
                Ok(answers) => {
                    let answered = answers.len().min(waiting.len());
                    for ((_, reply), answer) in waiting.drain(..answered).zip(answers) {
                        let _ = reply.send(Ok(answer));
                    }
                }
                Err(e) => {
                    for (_, reply) in waiting.drain(..) {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

/// One question: the answers to the first of `queries` (at least one, or an error).
async fn ask(
    nats: &async_nats::Client,
    subject: &str,
    queries: NotifyQueries,
) -> Result<Vec<NotifyAnswer>, String> {
    let body = serde_json::to_vec(&queries).expect("queries serialise");
    let reply = tokio::time::timeout(ASK_TIMEOUT, nats.request(subject.to_owned(), body.into()))
        .await
        .map_err(|_| "auth did not answer in time".to_owned())?
        .map_err(|e| format!("cannot ask auth: {e}"))?;
    let answers = match serde_json::from_slice::<Reply<NotifyAnswers>>(&reply.payload) {
        Ok(Reply::Ok(answers)) => answers.answers,
        // Nothing to tell anyone of any of them.
        Ok(Reply::NotFound | Reply::SignedOut) => {
            vec![NotifyAnswer::default(); queries.queries.len()]
        }
        Ok(Reply::Failed(e)) => return Err(format!("auth: {e}")),
        Err(e) => return Err(format!("auth's answer: {e}")),
    };
    if answers.is_empty() {
        return Err("auth answered none of the messages".to_owned());
    }
    Ok(answers)
}
