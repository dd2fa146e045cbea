//! The gateway against the real stack: real auth, several real edges, clients over real sockets.

mod attachments;
mod attachments_retry;
mod bad_input;
mod busy;
mod calls;
mod chat;
mod conversation;
mod durations;
mod edge_process;
mod guilds;
mod history;
mod joining;
mod matrix;
mod members;
mod mentions;
mod openapi;
mod pins;
mod previews;
mod resume;
mod search;
mod signed_out;
mod slow_connections;
mod starting;
mod support;
mod voice;
mod webhooks;
