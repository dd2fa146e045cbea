//! The media and voice engines of the local stack, each used the way Natter will use it: SeaweedFS
//! through `smoke::s3` (presigned S3 requests), LiveKit through `smoke::livekit` (tokens Natter
//! signs, the Twirp room service), coturn through time-limited TURN credentials. Run against
//! `deploy/stack.sh up`'s engines.

mod livekit;
mod s3;
mod turn;
mod voice_check;
