//! The notification worker's question to auth (`{p}.auth.notify`): the messages handled at the
//! same time are asked about together, in one request, so that auth reads what they share (a busy
//! channel, its settings, the people a plain message may concern) once rather than per message.
//!
//! One question is in flight at a time; whatever is asked meanwhile waits for the next one (up
//! to [`MAX_NOTIFY_QUERIES`]; `kit::gather`). A busy stream makes full questions, a quiet one
//! asks at once.

use std::time::Duration;

use kit::gather::Gather;
use prometheus::IntCounter;
use proto::access::{
    MAX_NOTIFY_QUERIES, NotifyAnswer, NotifyAnswers, NotifyQueries, NotifyQuery, Reply,
};
use proto::subjects::Subjects;

/// How long auth gets to answer one question.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks auth whom messages concern; cheap to clone.
#[derive(Clone)]
pub struct Asker {
    questions: Gather<NotifyQuery, NotifyAnswer>,
}

impl Asker {
    /// Starts asking on `nats`, counting each question to auth in `questions`.
    pub fn start(nats: async_nats::Client, subjects: &Subjects, questions: IntCounter) -> Self {
        let subject = subjects.auth_notify();
        let questions = Gather::start(MAX_NOTIFY_QUERIES, 1, move |queries| {
            questions.inc();
            let (nats, subject) = (nats.clone(), subject.clone());
            async move { ask(&nats, &subject, NotifyQueries { queries }).await }
        });
        Self { questions }
    }

    /// Whom `query`'s message concerns (this page of them).
    pub async fn ask(&self, query: NotifyQuery) -> Result<NotifyAnswer, String> {
        self.questions.ask(query).await
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
    Ok(answers)
}
