//! The media and voice engines of the local stack, each used the way Natter will use it: SeaweedFS
//! through `object_store`'s S3 client, LiveKit through `livekit-api`'s tokens and room service,
//! coturn through time-limited TURN credentials. Run against `deploy/stack.sh up`'s engines.

mod livekit;
mod s3;
mod turn;
