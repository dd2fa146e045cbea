//! Calls in DMs and group channels: whom a call rings and until when, and the system message it
//! leaves in the channel when it ends ("Missed call from ann", "ann started a call that lasted 3
//! minutes").
//!
//! Auth owns a call as it owns voice states: a row of `calls` in PostgreSQL, written in the same
//! places as the voice states it follows (the first join makes it, later joins answer it, the
//! last leave ends it). The ringing's deadline is a column, not a timer in some process: every
//! auth process sweeps (`sweep`) for calls whose ringing ran out, and the `UPDATE … RETURNING`
//! hands each to exactly one of them, so a restarted auth or edge loses no ringing and no two
//! processes end the same one. A call that stops ringing (timed out, or every callee declined)
//! with nobody but its caller in it ends at once: the caller is taken out and the channel gets
//! the missed call.
//!
//! The system message goes through the chat stream like every other message (MESSAGE_CREATE of
//! type 3 on `{p}.in.{channel}`), so it is stored, in history and delivered once in order on
//! every device; its JetStream message id (`call-{channel}-{start}`) makes a retried publish
//! harmless. It is written once, when the call ends, by whichever process deleted the row.

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use proto::Snowflake;
use proto::api::messages::{Message, MessageCall, MessageType};
use proto::events::{CallEvent, Event};

use crate::state::AppState;

/// How often each auth process looks for ringing that ran out (and for calls nobody is in).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A call nobody is in for this long is ended by the sweep (its last leave was not seen through:
/// a process that died between the two writes).
const ORPHAN_AFTER: Duration = Duration::from_secs(30);

/// The most people one request may stop ringing for.
pub const MAX_RECIPIENTS: usize = 100;

/// A call's row as it ended.
#[derive(sqlx::FromRow)]
struct Ended {
    channel_id: i64,
    caller_id: i64,
    started_ms: i64,
    participants: Vec<i64>,
}

fn ids(raw: &[i64]) -> Vec<Snowflake> {
    raw.iter().copied().map(Snowflake::from_i64).collect()
}

async fn publish(state: &AppState, event: Event, channel: Snowflake) {
    state.events.channel(&event, channel, &[]).await;
    state.events.flush().await;
}

/// `user` joined `channel`'s call: the first join starts it (CALL_CREATE ringing the channel's
/// other members for the ring timeout), a later one answers it (CALL_UPDATE without them).
pub async fn joined(
    state: &AppState,
    channel: Snowflake,
    user: Snowflake,
) -> Result<(), sqlx::Error> {
    let others: Vec<i64> = crate::channels::member_ids(&state.db, channel)
        .await?
        .into_iter()
        .filter(|m| *m != user)
        .map(Snowflake::as_i64)
        .collect();
    let (started, ringing): (bool, Vec<i64>) = sqlx::query_as(
        "INSERT INTO calls (channel_id, caller_id, ringing, ring_until, participants)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4), ARRAY[$2])
         ON CONFLICT (channel_id) DO UPDATE SET
             ringing = array_remove(calls.ringing, $2),
             participants = CASE WHEN $2 = ANY (calls.participants) THEN calls.participants
                                 ELSE calls.participants || $2 END
         RETURNING (xmax = 0), ringing",
    )
    .bind(channel.as_i64())
    .bind(user.as_i64())
    .bind(&others)
    .bind(state.settings.ring_timeout.as_secs_f64())
    .fetch_one(&state.db)
    .await?;
    let call = CallEvent {
        channel_id: channel,
        ringing: ids(&ringing),
    };
    let event = if started {
        Event::CallCreate(call)
    } else {
        Event::CallUpdate(call)
    };
    publish(state, event, channel).await;
    Ok(())
}

/// The last person left `channel`'s call: it ends, and leaves its message.
pub async fn emptied(state: &AppState, channel: Snowflake) -> Result<(), sqlx::Error> {
    let ended: Option<Ended> = sqlx::query_as(
        "DELETE FROM calls WHERE channel_id = $1
         RETURNING channel_id, caller_id,
                   (extract(epoch FROM started_at) * 1000)::bigint AS started_ms, participants",
    )
    .bind(channel.as_i64())
    .fetch_optional(&state.db)
    .await?;
    if let Some(ended) = ended {
        post(state, ended).await;
    }
    Ok(())
}

/// `caller` stops `channel`'s call ringing `recipients` (themselves when none: declining). Only
/// someone in the call may stop it ringing others. When that leaves nobody rung and nobody but
/// the caller in it, the call ends as missed.
pub async fn stop_ringing(
    state: &AppState,
    channel: Snowflake,
    caller: Snowflake,
    recipients: &[Snowflake],
) -> Result<(), sqlx::Error> {
    let recipients: Vec<i64> = if recipients.is_empty() {
        vec![caller.as_i64()]
    } else {
        recipients.iter().map(|r| r.as_i64()).collect()
    };
    let others = recipients.iter().any(|r| *r != caller.as_i64());
    let row: Option<(Vec<i64>, i32)> = sqlx::query_as(
        "UPDATE calls SET ringing = ARRAY(SELECT r FROM unnest(ringing) r WHERE r <> ALL ($2))
         WHERE channel_id = $1 AND ringing && $2
           AND (NOT $4 OR $3 = ANY (participants)
                OR EXISTS (SELECT 1 FROM voice_states v WHERE v.user_id = $3 AND v.channel_id = $1))
         RETURNING ringing, cardinality(participants)",
    )
    .bind(channel.as_i64())
    .bind(&recipients)
    .bind(caller.as_i64())
    .bind(others)
    .fetch_optional(&state.db)
    .await?;
    let Some((ringing, participants)) = row else {
        return Ok(());
    };
    if ringing.is_empty() && participants <= 1 {
        return end_missed(state, channel).await;
    }
    let call = CallEvent {
        channel_id: channel,
        ringing: ids(&ringing),
    };
    publish(state, Event::CallUpdate(call), channel).await;
    Ok(())
}

/// A call that stopped ringing with nobody but its caller in it: its message is posted, and the
/// caller (alone in it) is taken out, which ends it for everyone (CALL_DELETE).
async fn end_missed(state: &AppState, channel: Snowflake) -> Result<(), sqlx::Error> {
    let ended: Option<Ended> = sqlx::query_as(
        "DELETE FROM calls WHERE channel_id = $1 AND cardinality(participants) <= 1
             AND cardinality(ringing) = 0
         RETURNING channel_id, caller_id,
                   (extract(epoch FROM started_at) * 1000)::bigint AS started_ms, participants",
    )
    .bind(channel.as_i64())
    .fetch_optional(&state.db)
    .await?;
    let Some(ended) = ended else {
        return Ok(());
    };
    post(state, ended).await;
    crate::voice::hang_up_all(state, channel).await
}

/// Every [`SWEEP_EVERY`], ends the ringing that ran out (and the calls it leaves missed), and
/// the calls nobody is in any more.
pub async fn sweep(state: AppState, shutdown: kit::lifecycle::Shutdown) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = sweep_once(&state).await {
            tracing::warn!(error = %e, "cannot sweep calls' ringing");
        }
    }
}

async fn sweep_once(state: &AppState) -> Result<(), sqlx::Error> {
    let timed_out: Vec<(i64, i32)> = sqlx::query_as(
        "UPDATE calls SET ringing = '{}'
         WHERE cardinality(ringing) > 0 AND ring_until < now()
         RETURNING channel_id, cardinality(participants)",
    )
    .fetch_all(&state.db)
    .await?;
    for (channel, participants) in timed_out {
        let channel = Snowflake::from_i64(channel);
        if participants <= 1 {
            end_missed(state, channel).await?;
        } else {
            let call = CallEvent {
                channel_id: channel,
                ringing: Vec::new(),
            };
            publish(state, Event::CallUpdate(call), channel).await;
        }
    }
    let orphans: Vec<Ended> = sqlx::query_as(
        "DELETE FROM calls c
         WHERE c.started_at < now() - make_interval(secs => $1)
           AND NOT EXISTS (SELECT 1 FROM voice_states v WHERE v.channel_id = c.channel_id)
         RETURNING channel_id, caller_id,
                   (extract(epoch FROM started_at) * 1000)::bigint AS started_ms, participants",
    )
    .bind(ORPHAN_AFTER.as_secs_f64())
    .fetch_all(&state.db)
    .await?;
    for ended in orphans {
        let channel = Snowflake::from_i64(ended.channel_id);
        post(state, ended).await;
        let call = CallEvent {
            channel_id: channel,
            ringing: Vec::new(),
        };
        publish(state, Event::CallDelete(call), channel).await;
    }
    Ok(())
}

/// Posts an ended call's system message through the chat stream, retrying for about a minute
/// (the stream's duplicate window keeps a retry from doubling it).
async fn post(state: &AppState, ended: Ended) {
    let channel = Snowflake::from_i64(ended.channel_id);
    let message = Message {
        id: state.ids.next_id(),
        channel_id: channel,
        author_id: Snowflake::from_i64(ended.caller_id),
        kind: MessageType::CALL,
        call: Some(Box::new(MessageCall {
            participants: ids(&ended.participants),
            ended_timestamp: proto::clock::unix_ms(),
            started_timestamp: u64::try_from(ended.started_ms).unwrap_or_default(),
        })),
        ..Message::default()
    };
    let payload = Event::MessageCreate(message).to_json();
    let dedupe = format!("call-{channel}-{}", ended.started_ms);
    let subject = state.subjects.chat_intake(channel);
    let js = async_nats::jetstream::new(state.nats.clone());
    let mut wait = Duration::from_millis(250);
    for attempt in 1..=8 {
        let publish = PublishMessage::build()
            .payload(payload.clone().into())
            .message_id(dedupe.clone());
        let sent = match js.send_publish(subject.clone(), publish).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, %channel, attempt, "cannot post a call's message");
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(15));
    }
}
