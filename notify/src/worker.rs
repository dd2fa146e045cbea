//! The worker: the durable JetStream consumer `notify` on the chat stream, shared by every notify
//! process. For each new message it asks auth whom it concerns (`{p}.auth.notify`: settings,
//! permissions and blocks live there; the messages handled at once in one question,
//! [`Asker`]), writes the mentions inbox of those it mentions or who got
//! it in a DM, asks presence who is away, and hands the away people's browsers to the
//! [`Pusher`](crate::push::Pusher). A message is acknowledged once its inbox rows are written and
//! its pushes queued; a failure (auth or the store unreachable) is retried after 5 s, up to five
//! times (an inbox row written twice is the same row). A deleted message (MESSAGE_DELETE in the
//! same stream) is removed from every inbox that holds it.
//!
//! An edit (MESSAGE_UPDATE with an edit time newer than the last one applied) asks auth again
//! whom the message concerns now and makes the inboxes say so: those its new text concerns get
//! the entry (with its new text; an edit pushes nobody, as on Discord), those it no longer
//! concerns lose it. Media's processing updates (link previews, image sizes, flags) repeat the
//! edit time they found, so they change nothing. A deleted message never comes back: every write
//! checks the delete marker before, and again after (a delete handled meanwhile by another notify
//! process may have missed what was written, so it is removed again).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer};
use futures::{StreamExt, TryStreamExt};
use proto::Snowflake;
use proto::access::{
    MAX_NOTIFY_QUERIES, MAX_RECIPIENTS, NotifyAnswer, NotifyQuery, RECIPIENTS_PAGE,
};
use proto::api::messages::Message;
use proto::api::notifications::{NotifyReason, PushPayload};
use proto::api::presence::PresenceStatus;
use proto::events::Event;
use proto::subjects::Subjects;
use proto::tracker::{Query, QueryReply};
use store::InboxStore;
use store::inbox::{InboxEntry, version_timestamp};
use tokio::sync::mpsc;

use crate::asker::Asker;
use crate::metrics::NotifyMetrics;
use crate::push::Job;

/// The durable consumer the notify processes share.
pub const DURABLE: &str = "notify";

const ACK_WAIT: Duration = Duration::from_secs(30);

/// Channels whose messages are handled at once (each may write many inbox rows: an @everyone in
/// a big server).
const AT_ONCE: usize = 16;

/// How long the events that are handled together wait for more after the first: a busy stream's
/// question to auth then asks about dozens of messages rather than the two or three that
/// happened to be ready (at 400 messages a second, 165 questions a second took auth and
/// PostgreSQL a sixth of a core). A notification is that much later, at most.
const GATHER: Duration = Duration::from_millis(50);

/// How long presence gets to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Inbox rows withdrawn at once for one edited message.
const INBOX_WRITES: usize = 64;

/// The longest text a push carries.
const PUSH_TEXT_CHARS: usize = 100;

pub struct Worker {
    pub nats: async_nats::Client,
    pub asker: Asker,
    pub subjects: Subjects,
    pub inbox: InboxStore,
    pub jobs: mpsc::Sender<Job>,
    pub metrics: NotifyMetrics,
    /// Set once the durable consumer exists: from then on every new message waits for notify,
    /// so the service is ready (`/readyz`).
    pub subscribed: kit::health::Flag,
}

impl Worker {
    /// Reads the chat stream until `shutdown` ([`kit::stream::read_durable`]: a pull that fails
    /// or ends is pulled again).
    pub async fn run(self, shutdown: kit::lifecycle::Shutdown) {
        let js = jetstream::new(self.nats.clone());
        kit::stream::read_durable(
            &js,
            &self.subjects.chat_stream_name(),
            kit::stream::new_events(
                DURABLE,
                "Natter notify: mentions inbox and pushes",
                &self.subjects,
                ACK_WAIT,
                1024,
            ),
            &self.subscribed,
            &shutdown,
            |messages| self.read(messages, &shutdown),
        )
        .await;
    }

    /// Handles what `messages` brings until it fails or ends (why), or `shutdown`. What arrives
    /// within [`GATHER`] of the first is handled together (up to [`MAX_NOTIFY_QUERIES`] events):
    /// first the question of whom each new message concerns, for all of them at once (one
    /// question to auth), then each channel's events in the stream's order (a message's create,
    /// edits and delete, and its pushes in the order its channel had them), up to [`AT_ONCE`]
    /// channels at once.
    async fn read(
        &self,
        messages: consumer::pull::Stream,
        shutdown: &kit::lifecycle::Shutdown,
    ) -> String {
        let mut messages = std::pin::pin!(tokio_stream::StreamExt::chunks_timeout(
            messages,
            MAX_NOTIFY_QUERIES,
            GATHER,
        ));
        loop {
            let arrived = tokio::select! {
                arrived = messages.next() => arrived,
                () = shutdown.cancelled() => return "shutting down".to_owned(),
            };
            let Some(arrived) = arrived else {
                return "the consumer's messages ended".to_owned();
            };
            let mut failed = None;
            let mut by_channel: Vec<Vec<(jetstream::Message, Option<Event>)>> = Vec::new();
            let mut place: HashMap<Option<Snowflake>, usize> = HashMap::new();
            for message in arrived {
                let message = match message {
                    Ok(message) => message,
                    Err(e) => {
                        failed = Some(e.to_string());
                        continue;
                    }
                };
                let event = serde_json::from_slice::<Event>(&message.payload).ok();
                let channel = event.as_ref().and_then(Event::channel);
                let at = *place.entry(channel).or_insert_with(|| {
                    by_channel.push(Vec::new());
                    by_channel.len() - 1
                });
                by_channel[at].push((message, event));
            }
            let mut first_pages = self.first_pages(&by_channel).await;
            let by_channel: Vec<Vec<_>> = by_channel
                .into_iter()
                .map(|events| {
                    let with_first = |(message, event): (jetstream::Message, Option<Event>)| {
                        let first = match &event {
                            Some(Event::MessageCreate(created)) => first_pages.remove(&created.id),
                            _ => None,
                        };
                        (message, event, first)
                    };
                    events.into_iter().map(with_first).collect()
                })
                .collect();
            futures::stream::iter(by_channel)
                .for_each_concurrent(AT_ONCE, |events| async move {
                    for (message, event, first) in events {
                        self.settle(message, event, first).await;
                    }
                })
                .await;
            if let Some(e) = failed {
                return e;
            }
        }
    }

    /// The first page of whom each new message among `events` concerns, asked all at once.
    async fn first_pages(
        &self,
        events: &[Vec<(jetstream::Message, Option<Event>)>],
    ) -> HashMap<Snowflake, Result<NotifyAnswer, String>> {
        let created = events
            .iter()
            .flatten()
            .filter_map(|(_, event)| match event {
                Some(Event::MessageCreate(created)) if created.kind.is_default() => Some(created),
                _ => None,
            });
        futures::future::join_all(
            created
                .map(|message| async move { (message.id, self.asker.ask(query(message)).await) }),
        )
        .await
        .into_iter()
        .collect()
    }

    /// Handles one event of the stream (with the first page of whom it concerns, if asked
    /// already) and acknowledges it, or has it come again after 5 s.
    async fn settle(
        &self,
        message: jetstream::Message,
        event: Option<Event>,
        first: Option<Result<NotifyAnswer, String>>,
    ) {
        // Delivered before and not acknowledged: its delete may have been handled meanwhile.
        let redelivered = message.info().is_ok_and(|info| info.delivered > 1);
        let handled = match event {
            // A person's message (a pin's notice, type 6, tells nobody).
            Some(Event::MessageCreate(created)) if created.kind.is_default() => {
                self.handle(&created, redelivered, first).await
            }
            // An edit: the inboxes follow its text.
            Some(Event::MessageUpdate(updated)) if updated.kind.is_default() => {
                self.revise(&updated).await
            }
            // A deleted message leaves every inbox.
            Some(Event::MessageDelete(deleted)) => self.forget(deleted.id).await,
            _ => Ok(()),
        };
        let ack = match handled {
            Ok(()) => {
                self.metrics.messages.with_label_values(&["ok"]).inc();
                message.ack().await
            }
            Err(e) => {
                self.metrics.messages.with_label_values(&["failed"]).inc();
                tracing::warn!(error = %e, "notifying of a message failed; retrying");
                message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                    .await
            }
        };
        if let Err(e) = ack {
            tracing::debug!(error = %e, "cannot acknowledge a chat event");
        }
    }

    /// Tells whom `message` concerns.
    async fn handle(
        &self,
        message: &Message,
        redelivered: bool,
        first: Option<Result<NotifyAnswer, String>>,
    ) -> Result<(), String> {
        if redelivered
            && self
                .inbox
                .was_forgotten(message.id)
                .await
                .map_err(|e| e.to_string())?
        {
            return Ok(());
        }
        let answer = self.recipients(message, first.transpose()?).await?;
        if answer.recipients.is_empty() {
            return Ok(());
        }
        let concerned = inbox_recipients(&answer);
        if !concerned.is_empty() {
            let known = self
                .inbox
                .inboxes_of(message.id)
                .await
                .map_err(|e| e.to_string())?;
            if known.forgotten {
                return Ok(());
            }
            // Handled after an edit of it (a retry): the edit decided the inboxes already.
            if known.edited_at.is_none() {
                let written_at = store::schema::id_timestamp(message.id);
                self.write_entries(message, &answer, &concerned, written_at)
                    .await?;
                if self.deleted_meanwhile(message.id).await? {
                    return Ok(());
                }
            }
        }
        self.push(message, &answer).await;
        Ok(())
    }

    /// Follows an edit of `message` into the inboxes (see the module's documentation).
    async fn revise(&self, message: &Message) -> Result<(), String> {
        // Never edited: a processing update of a message as it was sent.
        let Some(edited_at) = message.edited_at else {
            self.metrics.edits.with_label_values(&["ignored"]).inc();
            return Ok(());
        };
        let known = self
            .inbox
            .inboxes_of(message.id)
            .await
            .map_err(|e| e.to_string())?;
        // Deleted, or this edit (or a newer one) applied already: a redelivery, an older edit
        // retried late, or a processing update repeating the edit time.
        if known.forgotten || known.edited_at.is_some_and(|last| last >= edited_at) {
            self.metrics.edits.with_label_values(&["ignored"]).inc();
            return Ok(());
        }
        let answer = self.recipients(message, None).await?;
        let concerned = inbox_recipients(&answer);
        let written_at = version_timestamp(edited_at);
        self.write_entries(message, &answer, &concerned, written_at)
            .await?;
        let kept: HashSet<Snowflake> = concerned.iter().map(|&(user, _)| user).collect();
        let gone: Vec<Snowflake> = known
            .holders
            .into_iter()
            .filter(|user| !kept.contains(user))
            .collect();
        futures::stream::iter(gone)
            .map(|user| async move { self.inbox.withdraw(user, message.id, written_at).await })
            .buffer_unordered(INBOX_WRITES)
            .map_ok(|()| self.metrics.inbox_withdrawn.inc())
            .try_collect::<()>()
            .await
            .map_err(|e| e.to_string())?;
        // Last: a failure before it retries the whole edit.
        self.inbox
            .mark_edited(message.id, edited_at)
            .await
            .map_err(|e| e.to_string())?;
        self.deleted_meanwhile(message.id).await?;
        self.metrics.edits.with_label_values(&["applied"]).inc();
        Ok(())
    }

    /// Writes `message`'s entry into the inboxes of `concerned`, as its version of `written_at`.
    async fn write_entries(
        &self,
        message: &Message,
        answer: &NotifyAnswer,
        concerned: &[(Snowflake, NotifyReason)],
        written_at: i64,
    ) -> Result<(), String> {
        let mut entries = Vec::with_capacity(concerned.len());
        for &(user, reason) in concerned {
            let entry = InboxEntry {
                message_id: message.id,
                channel_id: message.channel_id,
                guild_id: answer.guild_id,
                author_id: message.author_id,
                content: message.content.clone(),
                reason,
            };
            entries.push((user, entry));
        }
        self.inbox
            .add(&entries, written_at)
            .await
            .map_err(|e| e.to_string())?;
        self.metrics.inbox.inc_by(entries.len() as u64);
        Ok(())
    }

    /// After writing entries of `message`: whether it was deleted meanwhile, in which case what
    /// was written is removed again. The delete writes its marker before it reads whose inboxes
    /// hold the message, and entries are written after their reverse rows; so either that read
    /// found them, or this one finds the marker.
    async fn deleted_meanwhile(&self, message: Snowflake) -> Result<bool, String> {
        let deleted = self
            .inbox
            .was_forgotten(message)
            .await
            .map_err(|e| e.to_string())?;
        if deleted {
            self.forget(message).await?;
        }
        Ok(deleted)
    }

    /// Removes a deleted message from every inbox that holds it.
    async fn forget(&self, message: Snowflake) -> Result<(), String> {
        let removed = self
            .inbox
            .forget_message(message)
            .await
            .map_err(|e| e.to_string())?;
        self.metrics.inbox_forgotten.inc_by(removed as u64);
        Ok(())
    }

    /// Whom `message` concerns, asked of auth a page at a time (an @everyone in a server of
    /// thousands, with their browsers, is more than one NATS message can hold), from `first`
    /// if the first page was asked already.
    async fn recipients(
        &self,
        message: &Message,
        first: Option<NotifyAnswer>,
    ) -> Result<NotifyAnswer, String> {
        let mut query = query(message);
        let mut page = match first {
            Some(page) => page,
            None => self.asker.ask(query.clone()).await?,
        };
        let mut whole = NotifyAnswer::default();
        loop {
            whole.guild_id = page.guild_id;
            whole.author_name = page.author_name;
            whole.recipients.extend(page.recipients);
            match page.next {
                Some(next) if whole.recipients.len() < MAX_RECIPIENTS => {
                    query.after = Some(next);
                    page = self.asker.ask(query.clone()).await?;
                }
                _ => return Ok(whole),
            }
        }
    }

    /// Queues a push for each recipient with a subscribed browser who is away: no session, or
    /// idle ones only (presence's combined status is the strongest of their sessions'). Someone
    /// active, on Do Not Disturb, or invisible (whose sessions' activity presence does not
    /// show) is not pushed.
    async fn push(&self, message: &Message, answer: &NotifyAnswer) {
        let subscribed: Vec<_> = answer
            .recipients
            .iter()
            .filter(|r| !r.subscriptions.is_empty())
            .collect();
        if subscribed.is_empty() {
            return;
        }
        let ids: Vec<Snowflake> = subscribed.iter().map(|r| r.user_id).collect();
        let statuses = self.statuses(&ids).await;
        let body: String = message.content.chars().take(PUSH_TEXT_CHARS).collect();
        for recipient in subscribed {
            let status = statuses
                .get(&recipient.user_id)
                .copied()
                .unwrap_or(PresenceStatus::Unknown);
            let away = matches!(
                status,
                PresenceStatus::Offline | PresenceStatus::Idle | PresenceStatus::Unknown
            );
            if !away {
                self.metrics.pushes.with_label_values(&["active"]).inc();
                continue;
            }
            let job = Job {
                user_id: recipient.user_id,
                payload: PushPayload {
                    channel_id: message.channel_id,
                    guild_id: answer.guild_id,
                    message_id: message.id,
                    author_id: message.author_id,
                    author: answer.author_name.clone(),
                    body: body.clone(),
                    count: 1,
                },
                subscriptions: recipient.subscriptions.clone(),
            };
            if self.jobs.try_send(job).is_err() {
                self.metrics.pushes.with_label_values(&["dropped"]).inc();
            }
        }
    }

    /// Each user's real status; those presence could not say are left out (treated as away:
    /// better a push too many than a mention missed).
    async fn statuses(&self, users: &[Snowflake]) -> HashMap<Snowflake, PresenceStatus> {
        let mut found = HashMap::new();
        for chunk in users.chunks(1000) {
            let body = serde_json::to_vec(&Query {
                user_ids: chunk.to_vec(),
            })
            .expect("queries serialise");
            let reply = tokio::time::timeout(
                ASK_TIMEOUT,
                self.nats
                    .request(self.subjects.presence_query(), body.into()),
            )
            .await;
            let Ok(Ok(reply)) = reply else {
                tracing::debug!("presence did not answer; pushing to everyone concerned");
                continue;
            };
            if let Ok(answer) = serde_json::from_slice::<QueryReply>(&reply.payload) {
                found.extend(answer.presences.into_iter().map(|p| (p.user_id, p.status)));
            }
        }
        found
    }
}

/// The question of whom `message` concerns: its first page.
fn query(message: &Message) -> NotifyQuery {
    NotifyQuery {
        channel_id: message.channel_id,
        author_id: message.author_id,
        mentions: message.mentioned_ids(),
        mention_roles: message.mention_roles.clone(),
        mention_everyone: message.mention_everyone,
        after: None,
        page: RECIPIENTS_PAGE,
    }
}

/// Those of `answer`'s recipients whose inbox gets the message (mentions and DMs), and why.
fn inbox_recipients(answer: &NotifyAnswer) -> Vec<(Snowflake, NotifyReason)> {
    answer
        .recipients
        .iter()
        .filter(|r| r.reason.is_inbox())
        .map(|r| (r.user_id, r.reason))
        .collect()
}
