//! Which server each channel belongs to, asked of auth (`{p}.auth.channel_guilds`) and kept. A
//! message names its channel only, yet the index holds its server too; a channel never moves
//! between servers, so an answer never goes stale. What is kept is bounded: past
//! [`MAX_KEPT`] channels it starts over, and asking again costs one request per batch.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use proto::Snowflake;
use proto::access::{ChannelGuilds, ChannelGuildsQuery, MAX_CHANNEL_GUILDS, Reply};
use proto::subjects::Subjects;

/// Channels whose server is kept at most.
const MAX_KEPT: usize = 100_000;

/// How long auth gets to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Guilds {
    nats: async_nats::Client,
    subjects: Subjects,
    known: Mutex<HashMap<Snowflake, Option<Snowflake>>>,
}

impl Guilds {
    pub fn new(nats: async_nats::Client, subjects: Subjects) -> Self {
        Self {
            nats,
            subjects,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The server of each of `channels`: none for a DM or group channel, or a channel auth no
    /// longer knows (deleted: never named to a search again). Fails when auth cannot answer.
    pub async fn of(
        &self,
        channels: &BTreeSet<Snowflake>,
    ) -> Result<HashMap<Snowflake, Option<Snowflake>>, String> {
        let mut found = HashMap::with_capacity(channels.len());
        let mut unknown = Vec::new();
        {
            let known = self.known.lock().expect("never poisoned");
            for &channel in channels {
                match known.get(&channel) {
                    Some(&guild) => {
                        found.insert(channel, guild);
                    }
                    None => unknown.push(channel),
                }
            }
        }
        for chunk in unknown.chunks(MAX_CHANNEL_GUILDS) {
            let answer = self.ask(chunk).await?;
            let mut learnt: HashMap<Snowflake, Option<Snowflake>> =
                chunk.iter().map(|&c| (c, None)).collect();
            for channel in answer.channels {
                learnt.insert(channel.channel_id, channel.guild_id);
            }
            let mut known = self.known.lock().expect("never poisoned");
            if known.len() + learnt.len() > MAX_KEPT {
                known.clear();
            }
            known.extend(learnt.iter().map(|(&c, &g)| (c, g)));
            drop(known);
            found.extend(learnt);
        }
        Ok(found)
    }

    async fn ask(&self, channels: &[Snowflake]) -> Result<ChannelGuilds, String> {
        let query = ChannelGuildsQuery {
            channel_ids: channels.to_vec(),
        };
        let body = serde_json::to_vec(&query).expect("queries serialise");
        let reply = tokio::time::timeout(
            ASK_TIMEOUT,
            self.nats
                .request(self.subjects.auth_channel_guilds(), body.into()),
        )
        .await
        .map_err(|_| "auth did not say the channels' servers in time".to_owned())?
        .map_err(|e| format!("cannot ask auth for the channels' servers: {e}"))?;
        match serde_json::from_slice::<Reply<ChannelGuilds>>(&reply.payload) {
            Ok(Reply::Ok(answer)) => Ok(answer),
            Ok(Reply::Failed(e)) => Err(format!("auth: {e}")),
            Ok(Reply::NotFound | Reply::SignedOut) => {
                Err("auth did not say the channels' servers".to_owned())
            }
            Err(e) => Err(format!("auth's answer about the channels' servers: {e}")),
        }
    }
}
