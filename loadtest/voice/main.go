// Command voice-load puts N simulated people in one LiveKit room, each publishing a microphone
// (and optionally a camera) and subscribing to everyone else, and reports what they receive.
// It exists to measure the media server's cost per participant (issue 18); LiveKit's own
// `lk load-test` cannot be installed here.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

type options struct {
	url, apiKey, apiSecret, room string
	publishers                   int
	video                        bool
	duration, joinInterval       time.Duration
	joinTimeout, reportEvery     time.Duration
	mediaDir, logLevel           string
}

func parseFlags() *options {
	o := &options{}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	flag.StringVar(&o.url, "url", "ws://127.0.0.1:7880", "LiveKit URL")
	flag.StringVar(&o.apiKey, "api-key", "devkey", "API key")
	flag.StringVar(&o.apiSecret, "api-secret", "secret", "API secret")
	flag.StringVar(&o.room, "room", "voice-load", "room name")
	flag.IntVar(&o.publishers, "publishers", 2, "participants, each publishing audio (and video with --video)")
	flag.BoolVar(&o.video, "video", false, "also publish a 640x360 VP8 camera track (~400 kbit/s, 30 fps)")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long the full call lasts after the last join")
	flag.DurationVar(&o.joinInterval, "join-interval", 500*time.Millisecond, "delay between successive joins (people trickle in)")
	flag.DurationVar(&o.joinTimeout, "join-timeout", 20*time.Second, "connect timeout per participant")
	flag.DurationVar(&o.reportEvery, "report-every", 10*time.Second, "progress report interval")
	flag.StringVar(&o.mediaDir, "media-dir", filepath.Join(cache, "natter", "voice-load"), "where the ffmpeg-made clips are cached")
	// pion's ICE warns "Failed to ping without candidate pairs" on every normal connect; real
	// problems reach the report through the SDK's callbacks anyway.
	flag.StringVar(&o.logLevel, "log-level", "error", "LiveKit SDK and pion log level")
	flag.Parse()
	if o.publishers < 2 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "voice-load: --publishers must be at least 2 and no positional arguments are taken")
		os.Exit(2)
	}
	return o
}

// participant is one simulated person. Counters are atomics: every subscribed track's reader
// goroutine adds to them while the reporter reads them.
type participant struct {
	index      int
	identity   string
	room       *lksdk.Room
	start      time.Time    // when the connect call began
	firstAudio atomic.Int64 // ns from start to the first audio RTP packet from someone else; 0 = none yet
	packets    atomic.Uint64
	bytes      atomic.Uint64 // RTP packets (header + payload) after SRTP decryption
	videoBytes atomic.Uint64 // the video part of bytes, to tell a starved video from a starved call
	subscribed atomic.Int32  // remote tracks subscribed
	withMedia  atomic.Int32  // of which at least one packet arrived
	joined     atomic.Bool
}

// failures collects everything that went wrong, for the final report.
var (
	failMu   sync.Mutex
	failures []string
	leaving  atomic.Bool // set once we disconnect on purpose, so that is not reported as a failure
)

func fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	failMu.Lock()
	failures = append(failures, msg)
	failMu.Unlock()
	fmt.Fprintf(os.Stderr, "FAIL %s\n", msg)
}

func (p *participant) join(o *options, c *clips) error {
	yes := true
	token, err := auth.NewAccessToken(o.apiKey, o.apiSecret).
		SetIdentity(p.identity).
		SetValidFor(o.duration + time.Hour).
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: o.room, CanPublish: &yes, CanSubscribe: &yes}).
		ToJWT()
	if err != nil {
		return err
	}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = p.onTrack
	cb.OnTrackSubscriptionFailed = func(sid string, rp *lksdk.RemoteParticipant) {
		fail("%s: subscribing to track %s of %s failed", p.identity, sid, rp.Identity())
	}
	cb.OnDisconnectedWithReason = func(reason lksdk.DisconnectionReason) {
		if !leaving.Load() {
			fail("%s: disconnected: %s", p.identity, reason)
		}
	}
	p.start = time.Now()
	room, err := lksdk.ConnectToRoomWithToken(o.url, token, cb,
		lksdk.WithAutoSubscribe(true), lksdk.WithConnectTimeout(o.joinTimeout))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	p.room = room
	if err := p.publish(c, o.video); err != nil {
		return err
	}
	p.joined.Store(true)
	return nil
}

func (p *participant) publish(c *clips, video bool) error {
	mic, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		return err
	}
	// Start each participant at its own place in the clip so packets are not identical.
	if err := mic.StartWrite(audioProvider{&loopProvider{frames: c.opus, duration: c.opusFrame, next: p.index * 7 % len(c.opus)}}, nil); err != nil {
		return err
	}
	if _, err := p.room.LocalParticipant.PublishTrack(mic, &lksdk.TrackPublicationOptions{
		Name: "microphone", Source: livekit.TrackSource_MICROPHONE,
	}); err != nil {
		return fmt.Errorf("publish audio: %w", err)
	}
	if !video {
		return nil
	}
	cam := &loopProvider{frames: c.vp8, duration: c.vp8Frame}
	track, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		lksdk.WithRTCPHandler(func(pkt rtcp.Packet) {
			// The SFU asks for a keyframe whenever a subscriber needs one to start decoding.
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				cam.wantKeyframe.Store(true)
			}
		}))
	if err != nil {
		return err
	}
	if err := track.StartWrite(cam, nil); err != nil {
		return err
	}
	if _, err := p.room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{
		Name: "camera", Source: livekit.TrackSource_CAMERA, VideoWidth: 640, VideoHeight: 360,
	}); err != nil {
		return fmt.Errorf("publish video: %w", err)
	}
	return nil
}

// onTrack reads a subscribed track until it ends, counting packets as a real client's jitter
// buffer would consume them (reading is required: unread tracks back up inside pion).
func (p *participant) onTrack(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
	p.subscribed.Add(1)
	audio := track.Kind() == webrtc.RTPCodecTypeAudio
	go func() {
		buf := make([]byte, 1500)
		first := true
		for {
			n, _, err := track.Read(buf)
			if err != nil {
				return
			}
			if first {
				first = false
				p.withMedia.Add(1)
				if audio {
					p.firstAudio.CompareAndSwap(0, int64(time.Since(p.start)))
				}
			}
			p.packets.Add(1)
			p.bytes.Add(uint64(n))
			if !audio {
				p.videoBytes.Add(uint64(n))
			}
		}
	}()
}

// totals is a snapshot of every counter, so a report covers the time between two snapshots.
type totals struct {
	at                 time.Time
	packets, bytes     uint64
	videoBytes         uint64
	joined, subscribed int
	withMedia          int
	minBytes           uint64 // the least any joined participant has received
	cpu                time.Duration
}

func snapshot(ps []*participant) totals {
	t := totals{at: time.Now(), minBytes: ^uint64(0), cpu: selfCPU()}
	for _, p := range ps {
		b := p.bytes.Load()
		t.packets += p.packets.Load()
		t.bytes += b
		t.videoBytes += p.videoBytes.Load()
		t.subscribed += int(p.subscribed.Load())
		t.withMedia += int(p.withMedia.Load())
		if p.joined.Load() {
			t.joined++
			t.minBytes = min(t.minBytes, b)
		}
	}
	if t.joined == 0 {
		t.minBytes = 0
	}
	return t
}

// selfCPU is this process's user+system CPU time: the generator shares the machine with the
// server under test, so its own cost must be reported beside the server's.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// joinTimes lists each participant's connect → first heard audio time. The first to join is
// left out: nobody is there to hear yet, so its figure would only measure the join interval.
func joinTimes(ps []*participant) (times []time.Duration, missing int) {
	for _, p := range ps[1:] {
		if d := p.firstAudio.Load(); d > 0 {
			times = append(times, time.Duration(d))
		} else {
			missing++
		}
	}
	slices.Sort(times)
	return times, missing
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func ms(d time.Duration) int64 { return d.Round(time.Millisecond).Milliseconds() }

// perTrackKbps splits the received rate by kind, per remote track, for comparison with the
// clips' own bitrate: what every subscriber should get when the SFU forwards everything.
func perTrackKbps(from, to totals) (audio, video float64) {
	secs := to.at.Sub(from.at).Seconds()
	tracks := float64(max(to.joined*(to.joined-1), 1)) // of each kind
	v := float64(to.videoBytes - from.videoBytes)
	a := float64(to.bytes-from.bytes) - v
	return a * 8 / 1e3 / secs / tracks, v * 8 / 1e3 / secs / tracks
}

func report(label string, o *options, c *clips, ps []*participant, from, to totals) {
	secs := to.at.Sub(from.at).Seconds()
	n := max(to.joined, 1)
	pktRate := float64(to.packets-from.packets) / secs
	byteRate := float64(to.bytes-from.bytes) / secs
	tracksPer := 1
	if o.video {
		tracksPer = 2
	}
	times, missing := joinTimes(ps)
	fmt.Printf("[%s] joined %d/%d  tracks subscribed %d/%d (with media %d)\n",
		label, to.joined, len(ps), to.subscribed, len(ps)*(len(ps)-1)*tracksPer, to.withMedia)
	fmt.Printf("[%s] join→first audio heard: p50 %v p99 %v max %v (%d of %d measured)\n", label,
		percentile(times, 0.5).Round(time.Millisecond), percentile(times, 0.99).Round(time.Millisecond),
		percentile(times, 1).Round(time.Millisecond), len(times), len(times)+missing)
	fmt.Printf("[%s] received over %.0fs: total %.0f pkt/s %.1f kB/s; per participant %.1f pkt/s %.1f kB/s (%.0f kbit/s)\n",
		label, secs, pktRate, byteRate/1e3, pktRate/float64(n), byteRate/1e3/float64(n), byteRate*8/1e3/float64(n))
	a, v := perTrackKbps(from, to)
	fmt.Printf("[%s] per remote track: audio %.1f kbit/s, video %.1f kbit/s (RTP; the clips' payload: audio %.1f, video %.1f)\n",
		label, a, v, clipKbps(c.opus, c.opusFrame), clipKbps(c.vp8, c.vp8Frame))
	fmt.Printf("[%s] generator CPU %.0f%% of one core\n", label, 100*(to.cpu-from.cpu).Seconds()/secs)
}

func main() { os.Exit(run()) }

func run() int {
	o := parseFlags()
	if l, err := logger.NewZapLogger(&logger.Config{Level: o.logLevel}); err == nil {
		lksdk.SetLogger(l)
	}
	c, err := loadClips(o.mediaDir, o.video)
	if err != nil {
		fmt.Fprintf(os.Stderr, "voice-load: media: %v\n", err)
		return 2
	}
	fmt.Printf("media: Opus %d packets of %v, VP8 %d frames of %v, from %s\n",
		len(c.opus), c.opusFrame, len(c.vp8), c.vp8Frame, o.mediaDir)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ps := make([]*participant, o.publishers)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range ps {
		p := &participant{index: i, identity: fmt.Sprintf("load-%02d", i)}
		ps[i] = p
		wg.Go(func() {
			if err := p.join(o, c); err != nil {
				fail("%s: join: %v", p.identity, err)
			}
		})
		if i < len(ps)-1 {
			select {
			case <-time.After(o.joinInterval):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			ps = ps[:i+1]
			break
		}
	}
	wg.Wait()
	steady := snapshot(ps)
	fmt.Printf("ramp: %d joins in %.1fs; now holding the call for %v\n", steady.joined, steady.at.Sub(begin).Seconds(), o.duration)

	ticker := time.NewTicker(o.reportEvery)
	end := time.After(o.duration)
	last := steady
loop:
	for {
		select {
		case <-ticker.C:
			now := snapshot(ps)
			report(fmt.Sprintf("+%.0fs", now.at.Sub(steady.at).Seconds()), o, c, ps, last, now)
			last = now
		case <-end:
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	ticker.Stop()
	final := snapshot(ps)
	fmt.Println("--- final (steady window: after the last join until the end) ---")
	report("final", o, c, ps, steady, final)

	leaving.Store(true)
	var dw sync.WaitGroup
	for _, p := range ps {
		if p.room != nil {
			dw.Go(p.room.Disconnect)
		}
	}
	dw.Wait()

	code := 0
	for _, p := range ps {
		switch {
		case !p.joined.Load():
			code = 1 // its join failure is already listed
		case p.bytes.Load() == 0:
			fail("%s: received nothing", p.identity)
			code = 1
		}
	}
	times, _ := joinTimes(ps)
	audioKbps, videoKbps := perTrackKbps(steady, final)
	fmt.Printf("RESULT publishers=%d video=%t joined=%d tracks=%d with_media=%d join_p50_ms=%d join_p99_ms=%d join_max_ms=%d "+
		"rx_bytes_per_s_per_participant=%.0f audio_kbps_per_track=%.1f video_kbps_per_track=%.1f min_participant_bytes=%d generator_cpu_pct=%.1f failures=%d\n",
		len(ps), o.video, final.joined, final.subscribed, final.withMedia,
		ms(percentile(times, 0.5)), ms(percentile(times, 0.99)), ms(percentile(times, 1)),
		float64(final.bytes-steady.bytes)/final.at.Sub(steady.at).Seconds()/float64(max(final.joined, 1)),
		audioKbps, videoKbps, final.minBytes, 100*(final.cpu-steady.cpu).Seconds()/final.at.Sub(steady.at).Seconds(), len(failures))
	if len(failures) > 0 {
		fmt.Printf("failures (%d):\n  %s\n", len(failures), strings.Join(failures, "\n  "))
	}
	return code
}
