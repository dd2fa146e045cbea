// The notification sound: a short two-note chime generated with WebAudio (no asset to ship or
// license). Browsers allow audio only after the page had a user gesture; before that the tone is
// skipped silently.

let ctx: AudioContext | null = null;

export function playTone(): void {
  const Ctor = typeof window !== 'undefined' ? window.AudioContext : undefined;
  if (!Ctor) return;
  try {
    ctx ??= new Ctor();
    if (ctx.state === 'suspended') void ctx.resume().catch(() => undefined);
    const start = ctx.currentTime;
    for (const [i, freq] of [880, 1320].entries()) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      const t = start + i * 0.12;
      osc.type = 'sine';
      osc.frequency.setValueAtTime(freq, t);
      // A quick rise and an exponential fade: a soft "ding", never a click.
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.15, t + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t);
      osc.stop(t + 0.26);
    }
  } catch {
    // No audio device, or the browser refused: the notification itself still shows.
  }
}
