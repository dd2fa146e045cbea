//! Presence against the real stack, one test binary: its NATS contract without edges, its
//! readiness following Redis, and a presence process stalled past the expiry.

mod readiness;
mod stall;
mod tracking;
