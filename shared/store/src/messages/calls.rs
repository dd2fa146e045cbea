//! Calls' system messages (`message_calls`): who was in a call and when it began and ended,
//! written by the persister with the message (type 3), read to dress a page, removed with it.
//! A side table ([`super::side`]).

use std::collections::HashSet;

use proto::Snowflake;
use proto::api::messages::{Message, MessageCall, MessageType};

use super::side::{Side, SideTable};
use super::{MessageStore, StoreError};
use crate::schema::key_of;

/// `message_calls`: the participants, and when the call began and ended (Unix ms).
pub(crate) struct Calls;

impl Side for Calls {
    const TABLE: &'static str = "message_calls";
    const COLUMNS: &'static [&'static str] = &["participants", "started_at", "ended_at"];
    type Row = (i64, Option<Vec<i64>>, Option<i64>, Option<i64>);
    type Stored = MessageCall;

    fn table(store: &MessageStore) -> &SideTable<Self> {
        &store.sides.calls
    }

    fn id(row: &Self::Row) -> i64 {
        row.0
    }

    fn stored(_: Snowflake, (_, participants, started, ended): Self::Row) -> Option<MessageCall> {
        let ms = |t: Option<i64>| t.and_then(|t| u64::try_from(t).ok()).unwrap_or(0);
        Some(MessageCall {
            participants: participants
                .unwrap_or_default()
                .into_iter()
                .map(Snowflake::from_i64)
                .collect(),
            started_timestamp: ms(started),
            ended_timestamp: ms(ended),
        })
    }

    /// A message from the stream's unwritten events carries its own call.
    fn carried(message: &Message, _: &HashSet<Snowflake>) -> bool {
        message.call.is_some()
    }

    /// The row makes the message a call's system message: its type too.
    fn dress(message: &mut Message, call: MessageCall) {
        message.kind = MessageType::CALL;
        message.call = Some(Box::new(call));
    }
}

impl MessageStore {
    /// Records a call's system message's call (at stream time `at`); nothing for other
    /// messages. Idempotent.
    pub async fn write_call(&self, message: &Message, at: i64) -> Result<(), StoreError> {
        let Some(call) = &message.call else {
            return Ok(());
        };
        let (channel, bucket, id) = key_of(message.channel_id, message.id);
        let participants: Vec<i64> = call.participants.iter().map(|p| p.as_i64()).collect();
        let ms = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
        let values = (
            channel,
            bucket,
            id,
            participants,
            ms(call.started_timestamp),
            ms(call.ended_timestamp),
            at,
        );
        self.sides.calls.insert(values).await
    }

    /// Forgets a deleted message's call (at stream time `at`). Idempotent.
    pub async fn delete_call(
        &self,
        channel: Snowflake,
        id: Snowflake,
        at: i64,
    ) -> Result<(), StoreError> {
        self.sides.calls.delete(channel, id, at).await
    }
}
