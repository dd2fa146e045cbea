//! Presence and discovery against the real stack: real auth, presence and several edges (one of
//! them a real process, to be killed), clients over real sockets.

#[allow(dead_code, unreachable_pub)]
#[path = "../gateway/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../gateway/edge_process.rs"]
mod edge_process;

mod consent;
mod discovery;
mod presence;
mod ready;
mod world;
