import { describe, expect, it } from 'vitest';
import { multipartBody } from './upload';

describe('upload', () => {
  it('sends the text as payload_json and each file as files[n], in order', () => {
    const a = new File(['a'], 'cat.png', { type: 'image/png' });
    const b = new File(['bb'], 'notes.txt', { type: 'text/plain' });
    const body = multipartBody('look', 'n1', [a, b]);
    expect(JSON.parse(body.get('payload_json') as string)).toEqual({ content: 'look', nonce: 'n1' });
    expect((body.get('files[0]') as File).name).toBe('cat.png');
    expect((body.get('files[1]') as File).name).toBe('notes.txt');
    expect(body.get('files[2]')).toBeNull();
  });
});
