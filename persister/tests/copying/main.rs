//! The persister against the real stack, one test binary: its round trips through JetStream and
//! the CQL store, the store's ordering rules, and a persister killed mid-batch.

mod crash;
mod round_trip;
mod stored;
