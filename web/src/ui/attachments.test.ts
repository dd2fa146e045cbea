import { describe, expect, it } from 'vitest';
import type { Attachment } from '../api/types';
import { formatDuration, formatSize, imageBox, isInlineImage, playerOf } from './attachments';

const file = (over: Partial<Attachment>): Attachment => ({
  id: '1',
  filename: 'a.png',
  size: 10,
  url: 'http://media/a',
  proxy_url: 'http://media/a&variant=preview',
  ...over,
});

describe('attachments', () => {
  it('reserves an image its own shape, scaled down to fit and never up', () => {
    expect(imageBox(file({ width: 4000, height: 3000 }))).toEqual({ width: 400, height: 300 });
    expect(imageBox(file({ width: 1000, height: 3000 }))).toEqual({ width: 100, height: 300 });
    expect(imageBox(file({ width: 64, height: 48 }))).toEqual({ width: 64, height: 48 });
  });

  it('gives an image of unknown size a fixed box', () => {
    expect(imageBox(file({}))).toEqual({ width: 240, height: 180 });
  });

  it('shows images inline and anything else, SVG included, as a file', () => {
    expect(isInlineImage(file({ content_type: 'image/jpeg' }))).toBe(true);
    expect(isInlineImage(file({ content_type: 'image/svg+xml' }))).toBe(false);
    expect(isInlineImage(file({ content_type: 'text/plain; charset=utf-8' }))).toBe(false);
    expect(isInlineImage(file({}))).toBe(false);
  });

  it('plays the recordings and videos media serves inline, and nothing else', () => {
    expect(playerOf(file({ content_type: 'audio/ogg' }))).toBe('audio');
    expect(playerOf(file({ content_type: 'audio/opus' }))).toBe('audio');
    expect(playerOf(file({ content_type: 'audio/mpeg' }))).toBe('audio');
    expect(playerOf(file({ content_type: 'video/webm' }))).toBe('video');
    expect(playerOf(file({ content_type: 'video/quicktime' }))).toBe(null);
    expect(playerOf(file({ content_type: 'image/png' }))).toBe(null);
    expect(playerOf(file({}))).toBe(null);
  });

  it("writes a recording's duration as players show it", () => {
    expect(formatDuration(7.25)).toBe('0:07');
    expect(formatDuration(0.5)).toBe('0:00');
    expect(formatDuration(205)).toBe('3:25');
    expect(formatDuration(3723.9)).toBe('1:02:03');
    expect(formatDuration(Number.NaN)).toBe('0:00');
  });

  it('writes sizes as people read them', () => {
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(3500)).toBe('3.4 KB');
    expect(formatSize(25 * 1024 * 1024)).toBe('25 MB');
  });
});
