//! The index itself: one tantivy index on local disk holding every message of this process's
//! partitions, one document per message (its id, channel, server, author, words, the people it
//! mentions, and what it has: link, file, image, video). Deletes and edits are by message id: an
//! edit replaces the document whole, so its old words are gone with it.
//!
//! Pins are documents of their own, one per pinned message (the message's id and channel), added
//! on a pin and deleted on an unpin. A document cannot be changed in place in tantivy, only
//! deleted and added again whole, and the index keeps only ids of a message (not its words): a
//! pin kept on the message's document would have to rebuild it from what the pin event does not
//! carry, and every edit (a whole new document) would drop it. Apart, a pin and an edit never
//! touch each other's document; `pinned=` asks for the pins of the channels searched first (at
//! most 50 per channel) and keeps, or leaves out, those messages.
//!
//! How far the index holds the chat stream is written into the index's own commits (tantivy's
//! commit payload: the last stream sequence applied, the partitions it holds, and whether it was
//! built completely), so the index and its position can never disagree: after a crash the
//! process resumes from the sequence of the last commit, and what it had applied since is applied
//! again (every write is idempotent by message id).

use std::collections::{BTreeSet, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

use proto::Snowflake;
use proto::api::messages::{Message, MessageType};
use proto::api::search::{Has, SearchFilter};
use proto::search::Found;
use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, DocSetCollector, FilterCollector, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, EmptyQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};

/// The tokenizer of message text: words split on anything not alphanumeric, lowercased, accents
/// folded (so "cafe" finds "café"), words over 40 bytes dropped (they are not words).
const WORDS: &str = "words";

/// Memory the writer may hold before it writes a segment: bounded, whatever the intake's rate.
const WRITER_BYTES: usize = 32 * 1024 * 1024;

/// What the index's documents hold, and how. An index whose commits record another version (or
/// none: built before versions) is built again from the store, like a lost one; an index of
/// another schema cannot even be opened, and starts anew.
/// 2: each message's server, and pins. 3: the channel a fast field (a server's search filters
/// its matches by channel instead of reading every named channel's documents).
pub const SCHEMA_VERSION: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("search index folder: {0}")]
    Folder(String),
}

/// What each commit records with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Every event of the chat stream up to this sequence is applied.
    pub sequence: u64,
    /// The partitions held, and out of how many: another assignment needs another index.
    pub partitions: BTreeSet<u32>,
    pub of: u32,
    /// The index was built whole (a rebuild from the store that stopped half way is not).
    pub complete: bool,
    /// [`SCHEMA_VERSION`] of the documents (0: an index from before versions).
    #[serde(default)]
    pub version: u32,
}

struct Fields {
    id: Field,
    channel: Field,
    /// The server of the message's channel; none in a DM or group channel.
    guild: Field,
    author: Field,
    content: Field,
    mentions: Field,
    has: Field,
    /// A pin's document: the message pinned, and its channel (a field of its own, so that a
    /// search of messages never matches a pin).
    pin_of: Field,
    pin_channel: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(WORDS)
            .set_index_option(IndexRecordOption::Basic),
    );
    let fields = Fields {
        id: builder.add_u64_field("id", INDEXED | FAST),
        channel: builder.add_u64_field("channel", INDEXED | FAST),
        guild: builder.add_u64_field("guild", INDEXED),
        author: builder.add_u64_field("author", INDEXED),
        content: builder.add_text_field("content", words),
        mentions: builder.add_u64_field("mentions", INDEXED),
        has: builder.add_text_field("has", STRING),
        pin_of: builder.add_u64_field("pin_of", INDEXED | STORED),
        pin_channel: builder.add_u64_field("pin_channel", INDEXED),
    };
    (builder.build(), fields)
}

/// The index of this process's partitions.
pub struct MessageIndex {
    index: Index,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    reader: IndexReader,
    fields: Fields,
}

impl MessageIndex {
    /// Opens the index in `folder`, or makes an empty one there when it is missing or cannot be
    /// read (a corrupt or foreign folder is emptied first). Its position says which: an empty
    /// index has none.
    pub fn open(folder: &Path) -> Result<(Self, Option<Position>), IndexError> {
        std::fs::create_dir_all(folder).map_err(|e| IndexError::Folder(e.to_string()))?;
        match Self::open_in(folder) {
            Ok(opened) => Ok(opened),
            Err(e) => {
                tracing::warn!(error = %e, folder = %folder.display(),
                    "the search index cannot be read; starting it anew");
                std::fs::remove_dir_all(folder).map_err(|e| IndexError::Folder(e.to_string()))?;
                std::fs::create_dir_all(folder).map_err(|e| IndexError::Folder(e.to_string()))?;
                let (index, _) = Self::open_in(folder)?;
                Ok((index, None))
            }
        }
    }

    fn open_in(folder: &Path) -> Result<(Self, Option<Position>), IndexError> {
        let (schema, fields) = schema();
        let directory =
            MmapDirectory::open(folder).map_err(|e| IndexError::Folder(e.to_string()))?;
        let index = Index::open_or_create(directory, schema)?;
        index.tokenizers().register(
            WORDS,
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(40))
                .filter(LowerCaser)
                .filter(AsciiFoldingFilter)
                .build(),
        );
        let position = index
            .load_metas()?
            .payload
            .and_then(|p| serde_json::from_str::<Position>(&p).ok());
        let writer = index.writer_with_num_threads(1, WRITER_BYTES)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok((
            Self {
                index,
                writer: Mutex::new(writer),
                reader,
                fields,
            },
            position,
        ))
    }

    /// Adds a message of server `guild` (none: a DM's or group channel's), or replaces it whole
    /// (an edit). System messages are not indexed.
    pub fn put(&self, message: &Message, guild: Option<Snowflake>) {
        let f = &self.fields;
        let writer = self.writer.lock().expect("never poisoned");
        writer.delete_term(Term::from_field_u64(f.id, message.id.get()));
        if message.kind != MessageType::DEFAULT {
            return;
        }
        let mut doc = TantivyDocument::default();
        doc.add_u64(f.id, message.id.get());
        doc.add_u64(f.channel, message.channel_id.get());
        if let Some(guild) = guild {
            doc.add_u64(f.guild, guild.get());
        }
        doc.add_u64(f.author, message.author_id.get());
        doc.add_text(f.content, &message.content);
        for user in &message.mentions {
            doc.add_u64(f.mentions, user.id.get());
        }
        for has in Has::of(message) {
            doc.add_text(f.has, has.as_str());
        }
        if let Err(e) = writer.add_document(doc) {
            // Only a writer that died can refuse; the commit that follows fails and says so.
            tracing::error!(error = %e, "the search index refused a message");
        }
    }

    /// Forgets a message, and its pin.
    pub fn remove(&self, id: Snowflake) {
        let writer = self.writer.lock().expect("never poisoned");
        writer.delete_term(Term::from_field_u64(self.fields.id, id.get()));
        writer.delete_term(Term::from_field_u64(self.fields.pin_of, id.get()));
    }

    /// Records that `message` of `channel` is pinned now, or is not. Idempotent: its pin's
    /// document is deleted and, when pinned, added again.
    pub fn pin(&self, channel: Snowflake, message: Snowflake, pinned: bool) {
        let f = &self.fields;
        let writer = self.writer.lock().expect("never poisoned");
        writer.delete_term(Term::from_field_u64(f.pin_of, message.get()));
        if !pinned {
            return;
        }
        let mut doc = TantivyDocument::default();
        doc.add_u64(f.pin_of, message.get());
        doc.add_u64(f.pin_channel, channel.get());
        if let Err(e) = writer.add_document(doc) {
            tracing::error!(error = %e, "the search index refused a pin");
        }
    }

    /// Forgets every message and pin of a channel (it was deleted).
    pub fn remove_channel(&self, channel: Snowflake) {
        let writer = self.writer.lock().expect("never poisoned");
        writer.delete_term(Term::from_field_u64(self.fields.channel, channel.get()));
        writer.delete_term(Term::from_field_u64(self.fields.pin_channel, channel.get()));
    }

    /// Forgets everything (before a rebuild).
    pub fn clear(&self) -> Result<(), IndexError> {
        let writer = self.writer.lock().expect("never poisoned");
        writer.delete_all_documents()?;
        Ok(())
    }

    /// The position of the last commit, if it recorded one.
    pub fn position(&self) -> Option<Position> {
        let payload = self.index.load_metas().ok()?.payload?;
        serde_json::from_str(&payload).ok()
    }

    /// Makes everything applied so far durable and searchable, with `position`.
    pub fn commit(&self, position: &Position) -> Result<(), IndexError> {
        let mut writer = self.writer.lock().expect("never poisoned");
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&serde_json::to_string(position).expect("a position serialises"));
        prepared.commit()?;
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    /// The messages of `channels` (of server `guild`, when given) matching `filter`: how many
    /// in all, and the newest `offset + limit`, newest first.
    pub fn search(
        &self,
        channels: &[Snowflake],
        guild: Option<Snowflake>,
        filter: &SearchFilter,
    ) -> Result<(u64, Vec<Found>), IndexError> {
        let f = &self.fields;
        // One searcher for the pins and the messages: the same commit answers both.
        let searcher = self.reader.searcher();
        let u64_term = |field: Field, id: Snowflake| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_u64(field, id.get()),
                IndexRecordOption::Basic,
            ))
        };
        // Which documents the named channels hold. One channel is one term. A server's channels
        // are its term, each match then kept only when its channel (a fast field) is named:
        // reading the postings of every named channel instead (a term set) costs as many
        // documents as those channels hold, on every search, however few match the words.
        // A DM's or group's several channels are a term set.
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut named: Option<Arc<HashSet<u64>>> = None;
        match (channels, guild) {
            ([channel], _) => must.push((Occur::Must, u64_term(f.channel, *channel))),
            (_, Some(_)) => named = Some(Arc::new(channels.iter().map(|c| c.get()).collect())),
            (_, None) => must.push((
                Occur::Must,
                Box::new(TermSetQuery::new(
                    channels
                        .iter()
                        .map(|c| Term::from_field_u64(f.channel, c.get())),
                )),
            )),
        }
        if let Some(text) = &filter.content {
            let mut analyzer = self.index.tokenizer_for_field(f.content)?;
            let mut stream = analyzer.token_stream(text);
            let mut words = Vec::new();
            stream.process(&mut |token| words.push(token.text.clone()));
            if words.is_empty() {
                // Only punctuation: no word to find.
                must.push((Occur::Must, Box::new(EmptyQuery)));
            }
            for word in words {
                must.push((
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.content, &word),
                        IndexRecordOption::Basic,
                    )),
                ));
            }
        }
        if let Some(author) = filter.author_id {
            must.push((Occur::Must, u64_term(f.author, author)));
        }
        if let Some(user) = filter.mentions {
            must.push((Occur::Must, u64_term(f.mentions, user)));
        }
        if let Some(channel) = filter.channel_id {
            must.push((Occur::Must, u64_term(f.channel, channel)));
        }
        // A server's search: a channel named by mistake from elsewhere answers nothing.
        if let Some(guild) = guild {
            must.push((Occur::Must, u64_term(f.guild, guild)));
        }
        if let Some(pinned) = filter.pinned {
            let pins = self.pinned_in(&searcher, channels)?;
            match (pinned, pins.is_empty()) {
                (true, true) => must.push((Occur::Must, Box::new(EmptyQuery))),
                (true, false) => must.push((Occur::Must, Box::new(TermSetQuery::new(pins)))),
                (false, true) => {}
                (false, false) => must.push((Occur::MustNot, Box::new(TermSetQuery::new(pins)))),
            }
        }
        if let Some(has) = filter.has {
            must.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.has, has.as_str()),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if filter.min_id.is_some() || filter.max_id.is_some() {
            let bound = |id: Option<Snowflake>| match id {
                Some(id) => Bound::Excluded(Term::from_field_u64(f.id, id.get())),
                None => Bound::Unbounded,
            };
            must.push((
                Occur::Must,
                Box::new(RangeQuery::new(bound(filter.min_id), bound(filter.max_id))),
            ));
        }
        let query = BooleanQuery::new(must);
        let wanted = (filter.offset + filter.limit).max(1);
        let newest = TopDocs::with_limit(wanted).order_by_fast_field::<u64>("id", Order::Desc);
        let (total, top) = match named {
            Some(named) => {
                let only_named = move |channel: u64| named.contains(&channel);
                searcher.search(
                    &query,
                    &FilterCollector::new("channel".to_owned(), only_named, (Count, newest)),
                )?
            }
            None => searcher.search(&query, &(Count, newest))?,
        };
        // Each hit's id is its sort key, and its channel a fast field: no stored document read.
        let mut hits = Vec::with_capacity(top.len());
        for (id, address) in top {
            let channels = searcher
                .segment_reader(address.segment_ord)
                .fast_fields()
                .u64("channel")?;
            if let (Some(id), Some(channel)) = (id, channels.first(address.doc_id)) {
                hits.push(Found {
                    channel_id: Snowflake::from_u64(channel),
                    id: Snowflake::from_u64(id),
                });
            }
        }
        Ok((u64::try_from(total).unwrap_or(u64::MAX), hits))
    }

    /// The id terms of the messages pinned in `channels` (at most 50 each).
    fn pinned_in(
        &self,
        searcher: &tantivy::Searcher,
        channels: &[Snowflake],
    ) -> Result<Vec<Term>, IndexError> {
        let f = &self.fields;
        let pins = TermSetQuery::new(
            channels
                .iter()
                .map(|c| Term::from_field_u64(f.pin_channel, c.get())),
        );
        let found = searcher.search(&pins, &DocSetCollector)?;
        let mut ids = Vec::with_capacity(found.len());
        for address in found {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = doc.get_first(f.pin_of).and_then(|v| v.as_u64()) {
                ids.push(Term::from_field_u64(f.id, id));
            }
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u64, channel: u64, author: u64, content: &str) -> Message {
        serde_json::from_value(serde_json::json!({
            "id": id.to_string(), "channel_id": channel.to_string(),
            "author_id": author.to_string(), "content": content,
        }))
        .unwrap()
    }

    fn filter(content: &str) -> SearchFilter {
        SearchFilter {
            content: Some(content.to_owned()),
            limit: 25,
            ..SearchFilter::default()
        }
    }

    fn ids(index: &MessageIndex, channels: &[u64], f: &SearchFilter) -> Vec<u64> {
        let channels: Vec<Snowflake> = channels.iter().map(|&c| Snowflake::from_u64(c)).collect();
        let (_, hits) = index.search(&channels, None, f).unwrap();
        hits.iter().map(|h| h.id.get()).collect()
    }

    fn put(index: &MessageIndex, message: &Message) {
        index.put(message, None);
    }

    #[test]
    fn an_edit_replaces_the_words_and_a_delete_forgets_them() {
        let folder = tempfile::tempdir().unwrap();
        let (index, position) = MessageIndex::open(folder.path()).unwrap();
        assert_eq!(position, None, "a new index has no position");
        put(&index, &message(1, 10, 100, "the Budget for Café"));
        put(&index, &message(2, 10, 100, "lunch?"));
        index.commit(&Position::default()).unwrap();
        assert_eq!(ids(&index, &[10], &filter("budget cafe")), [1]);
        put(&index, &message(1, 10, 100, "the plan"));
        index.commit(&Position::default()).unwrap();
        assert!(ids(&index, &[10], &filter("budget")).is_empty());
        assert_eq!(ids(&index, &[10], &filter("plan")), [1]);
        index.remove(Snowflake::from_u64(1));
        index.commit(&Position::default()).unwrap();
        assert!(ids(&index, &[10], &filter("plan")).is_empty());
    }

    #[test]
    fn only_the_channels_named_answer_newest_first() {
        let folder = tempfile::tempdir().unwrap();
        let (index, _) = MessageIndex::open(folder.path()).unwrap();
        put(&index, &message(1, 10, 100, "budget one"));
        put(&index, &message(3, 10, 100, "budget three"));
        put(&index, &message(2, 20, 100, "budget two"));
        index.commit(&Position::default()).unwrap();
        assert_eq!(ids(&index, &[10], &filter("budget")), [3, 1]);
        assert_eq!(ids(&index, &[10, 20], &filter("budget")), [3, 2, 1]);
        assert!(ids(&index, &[30], &filter("budget")).is_empty());
    }

    #[test]
    fn the_position_survives_reopening_and_garbage_starts_anew() {
        let folder = tempfile::tempdir().unwrap();
        let position = Position {
            sequence: 42,
            partitions: [0].into(),
            of: 1,
            complete: true,
            version: SCHEMA_VERSION,
        };
        {
            let (index, _) = MessageIndex::open(folder.path()).unwrap();
            put(&index, &message(1, 10, 100, "kept"));
            index.commit(&position).unwrap();
        }
        let (index, found) = MessageIndex::open(folder.path()).unwrap();
        assert_eq!(found, Some(position));
        assert_eq!(ids(&index, &[10], &filter("kept")), [1]);
        drop(index);
        std::fs::write(folder.path().join("meta.json"), "not json").unwrap();
        let (index, found) = MessageIndex::open(folder.path()).unwrap();
        assert_eq!(found, None);
        assert!(ids(&index, &[10], &filter("kept")).is_empty());
    }

    #[test]
    fn a_pin_is_found_by_pinned_until_unpinned_and_survives_an_edit() {
        let folder = tempfile::tempdir().unwrap();
        let (index, _) = MessageIndex::open(folder.path()).unwrap();
        put(&index, &message(1, 10, 100, "budget one"));
        put(&index, &message(2, 10, 100, "budget two"));
        put(&index, &message(3, 20, 100, "budget three"));
        let c = Snowflake::from_u64;
        index.pin(c(10), c(1), true);
        index.commit(&Position::default()).unwrap();
        let pinned = |yes: bool| SearchFilter {
            pinned: Some(yes),
            ..filter("budget")
        };
        assert_eq!(ids(&index, &[10, 20], &pinned(true)), [1]);
        assert_eq!(ids(&index, &[10, 20], &pinned(false)), [3, 2]);
        assert!(
            ids(&index, &[20], &pinned(true)).is_empty(),
            "pins of channels not named"
        );
        // An edit replaces the message's document, not its pin; a pin twice is one pin.
        put(&index, &message(1, 10, 100, "budget one, revised"));
        index.pin(c(10), c(1), true);
        index.commit(&Position::default()).unwrap();
        assert_eq!(ids(&index, &[10], &pinned(true)), [1]);
        let (total, _) = index.search(&[c(10)], None, &pinned(true)).unwrap();
        assert_eq!(total, 1);
        index.pin(c(10), c(1), false);
        index.commit(&Position::default()).unwrap();
        assert!(ids(&index, &[10, 20], &pinned(true)).is_empty());
        assert_eq!(ids(&index, &[10, 20], &pinned(false)), [3, 2, 1]);
        // A search without `pinned` never sees a pin's document.
        index.pin(c(10), c(2), true);
        index.commit(&Position::default()).unwrap();
        let all = SearchFilter {
            limit: 25,
            ..SearchFilter::default()
        };
        assert_eq!(ids(&index, &[10, 20], &all), [3, 2, 1]);
        index.remove_channel(c(10));
        index.commit(&Position::default()).unwrap();
        assert!(ids(&index, &[10], &pinned(true)).is_empty());
    }

    #[test]
    fn a_servers_search_answers_only_from_that_servers_messages() {
        let folder = tempfile::tempdir().unwrap();
        let (index, _) = MessageIndex::open(folder.path()).unwrap();
        let c = Snowflake::from_u64;
        index.put(&message(1, 10, 100, "budget here"), Some(c(7)));
        index.put(&message(2, 20, 100, "budget elsewhere"), Some(c(8)));
        index.put(&message(3, 30, 100, "budget in a DM"), None);
        index.commit(&Position::default()).unwrap();
        let search = |guild| {
            let (_, hits) = index
                .search(&[c(10), c(20), c(30)], guild, &filter("budget"))
                .unwrap();
            hits.iter().map(|h| h.id.get()).collect::<Vec<_>>()
        };
        assert_eq!(search(Some(c(7))), [1]);
        assert_eq!(search(None), [3, 2, 1]);
    }

    #[test]
    fn a_servers_search_counts_and_shows_only_the_channels_named() {
        let folder = tempfile::tempdir().unwrap();
        let (index, _) = MessageIndex::open(folder.path()).unwrap();
        let c = Snowflake::from_u64;
        // Server 7's channels 10, 20 and 30, over two segments.
        index.put(&message(1, 10, 100, "budget one"), Some(c(7)));
        index.put(&message(2, 20, 100, "budget two"), Some(c(7)));
        index.commit(&Position::default()).unwrap();
        index.put(&message(3, 30, 100, "budget three"), Some(c(7)));
        index.put(&message(4, 10, 100, "budget four"), Some(c(7)));
        index.put(&message(5, 20, 100, "lunch"), Some(c(7)));
        index.commit(&Position::default()).unwrap();
        let search = |channels: &[u64], f: &SearchFilter| {
            let channels: Vec<Snowflake> = channels.iter().map(|&id| c(id)).collect();
            let (total, hits) = index.search(&channels, Some(c(7)), f).unwrap();
            let found: Vec<(u64, u64)> = hits
                .iter()
                .map(|h| (h.id.get(), h.channel_id.get()))
                .collect();
            (total, found)
        };
        assert_eq!(
            search(&[10, 30], &filter("budget")),
            (3, vec![(4, 10), (3, 30), (1, 10)])
        );
        assert_eq!(search(&[20], &filter("budget")), (1, vec![(2, 20)]));
        let newest = SearchFilter {
            limit: 1,
            ..filter("budget")
        };
        assert_eq!(search(&[10, 20], &newest), (3, vec![(4, 10)]));
        let all = SearchFilter {
            limit: 25,
            ..SearchFilter::default()
        };
        assert_eq!(search(&[20, 30], &all).0, 3);
    }
}
