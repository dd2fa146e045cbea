package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/livekit/server-sdk-go/v2/pkg/oggreader"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

// The payloads are real encoded media, made once with ffmpeg and cached, so the SFU parses and
// forwards them exactly as it would a browser's (VP8 keyframe detection, Opus TOC, etc.).
const (
	audioFile = "sine-opus-32k-cbr-20ms.ogg"
	videoFile = "testsrc-vp8-640x360-30fps-400k.ivf"
	// 10 s of each, looped: long enough that the loop point is not a burst of keyframes.
	clipSeconds = "10"
)

// clips holds every frame in memory, shared read-only by all participants, so that the
// generator spends its CPU on WebRTC (as a real client does) rather than on file reading.
type clips struct {
	opus      [][]byte
	opusFrame time.Duration
	vp8       [][]byte
	vp8Frame  time.Duration
}

// loadClips makes the clips in dir if absent, then reads them. The video is only read when asked.
func loadClips(dir string, withVideo bool) (*clips, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &clips{}
	audioPath := filepath.Join(dir, audioFile)
	if err := ensureClip(audioPath,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration="+clipSeconds,
		// CBR: on a pure tone, VBR overshoots to ~45 kbit/s; a voice call sits near 32.
		"-ac", "1", "-c:a", "libopus", "-b:a", "32k", "-vbr", "off", "-frame_duration", "20", "-application", "voip",
	); err != nil {
		return nil, err
	}
	if err := c.readOpus(audioPath); err != nil {
		return nil, fmt.Errorf("%s: %w", audioPath, err)
	}
	if !withVideo {
		return c, nil
	}
	videoPath := filepath.Join(dir, videoFile)
	// Realtime libvpx without alt-ref/lag: every IVF frame is one displayable frame, as a
	// browser's encoder sends. A keyframe every 2 s bounds how long a new subscriber waits.
	if err := ensureClip(videoPath,
		"-f", "lavfi", "-i", "testsrc=size=640x360:rate=30:duration="+clipSeconds,
		"-c:v", "libvpx", "-b:v", "400k", "-deadline", "realtime", "-cpu-used", "8",
		"-g", "60", "-auto-alt-ref", "0", "-lag-in-frames", "0", "-pix_fmt", "yuv420p",
	); err != nil {
		return nil, err
	}
	if err := c.readVP8(videoPath); err != nil {
		return nil, fmt.Errorf("%s: %w", videoPath, err)
	}
	return c, nil
}

// ensureClip runs ffmpeg with the given input/codec arguments unless path already exists. It
// writes to a temporary name first so an interrupted run never leaves a truncated clip behind.
func ensureClip(path string, args ...string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return fmt.Errorf("ffmpeg is needed once to make %s (Debian: apt-get install -y ffmpeg): %w", path, err)
	}
	tmp := path + ".tmp" + filepath.Ext(path)
	cmd := exec.Command(ffmpeg, append(append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...), tmp)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("ffmpeg making %s: %w: %s", path, err, out)
	}
	return os.Rename(tmp, path)
}

func (c *clips) readOpus(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, _, err := oggreader.NewOggReader(f) // reads past the OpusHead/OpusTags pages
	if err != nil {
		return err
	}
	for {
		pkt, err := r.ReadPacket()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
		if len(pkt) == 0 {
			continue
		}
		c.opus = append(c.opus, pkt)
	}
	if len(c.opus) == 0 {
		return errors.New("no Opus packets")
	}
	// The RTP timestamps follow the packets' own duration (from the TOC byte), 20 ms here.
	d, err := oggreader.ParsePacketDuration(c.opus[0])
	if err != nil {
		return err
	}
	c.opusFrame = d
	return nil
}

func (c *clips) readVP8(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, hdr, err := ivfreader.NewWith(f)
	if err != nil {
		return err
	}
	for {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
		c.vp8 = append(c.vp8, frame)
	}
	if len(c.vp8) == 0 || !isVP8Keyframe(c.vp8[0]) {
		return errors.New("clip does not start with a VP8 keyframe")
	}
	c.vp8Frame = time.Second * time.Duration(hdr.TimebaseNumerator) / time.Duration(hdr.TimebaseDenominator)
	return nil
}

// isVP8Keyframe reads the frame tag (RFC 6386 9.1): bit 0 of the first byte is 0 for a keyframe.
func isVP8Keyframe(frame []byte) bool { return len(frame) > 0 && frame[0]&1 == 0 }

// loopProvider feeds a clip to a LocalTrack forever; the SDK's write loop paces it by
// Duration. It implements lksdk.SampleProvider.
type loopProvider struct {
	lksdk.BaseSampleProvider
	frames   [][]byte
	duration time.Duration
	next     int
	// set by the RTCP handler on a PLI/FIR: a real camera then sends a keyframe; we rewind to
	// the clip's first frame, which is one, so a new subscriber's picture starts at once.
	wantKeyframe atomic.Bool
}

// NextSample never blocks or fails: the SDK's writer stops it through its context.
func (p *loopProvider) NextSample(context.Context) (media.Sample, error) {
	if p.wantKeyframe.Swap(false) {
		p.next = 0
	}
	s := media.Sample{Data: p.frames[p.next], Duration: p.duration}
	p.next = (p.next + 1) % len(p.frames)
	return s, nil
}

// audioProvider adds the audio level, sent in the audio-level RTP header extension (-dBov,
// 0 loudest, 127 silence): a speaking level keeps LiveKit's active-speaker detection busy, as in
// a call. Video tracks use a bare loopProvider, as the SDK only asks audio providers for a level.
type audioProvider struct{ *loopProvider }

func (audioProvider) CurrentAudioLevel() uint8 { return 30 }

// kbps is a clip's payload bitrate, the rate each published track sends before RTP overhead.
func clipKbps(frames [][]byte, frame time.Duration) float64 {
	if len(frames) == 0 {
		return 0
	}
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return float64(n) * 8 / 1e3 / (time.Duration(len(frames)) * frame).Seconds()
}
