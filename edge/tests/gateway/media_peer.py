"""A real WebRTC participant for the gateway tests: joins a LiveKit room with the token a
VOICE_SERVER_UPDATE carried and publishes a microphone track of silence, so that LiveKit counts it
as connected (it sends `participant_joined` / `participant_left` only for a participant whose
media connected). It prints "joined" once the room is connected, then stays until it is killed:
the test kills it (SIGKILL) to play a client that crashed, which never says goodbye.

    python media_peer.py ENDPOINT TOKEN

LiveKit's Python SDK (`livekit` on PyPI, Apache-2.0; `deploy/stack-media.sh` installs it into the
stack's venv) carries libwebrtc, which the Rust tests have no other way to get offline.
"""

import asyncio
import sys

from livekit import rtc

SAMPLE_RATE = 48000
FRAME = SAMPLE_RATE // 100  # 10 ms


async def main(endpoint: str, token: str) -> None:
    room = rtc.Room()
    await room.connect(endpoint, token)
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await room.local_participant.publish_track(track, options)
    print("joined", flush=True)
    silence = rtc.AudioFrame.create(SAMPLE_RATE, 1, FRAME)
    while True:
        await source.capture_frame(silence)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
