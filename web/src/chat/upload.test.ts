import { describe, expect, it } from 'vitest';
import { messageBody, slotRequest } from './upload';

describe('upload', () => {
  const a = new File(['a'], 'cat.png', { type: 'image/png' });
  const b = new File(['bb'], 'notes.txt', { type: 'text/plain' });

  it('asks for a slot per file, numbered in order, with each size', () => {
    expect(slotRequest([a, b])).toEqual({
      files: [
        { id: '0', filename: 'cat.png', file_size: 1 },
        { id: '1', filename: 'notes.txt', file_size: 2 },
      ],
    });
  });

  it('names each upload by its slot, whatever order media answered in', () => {
    const slots = [
      { id: '1', upload_url: 'u1', upload_filename: 'c/u/n1/notes.txt' },
      { id: '0', upload_url: 'u0', upload_filename: 'c/u/n0/cat.png' },
    ];
    expect(messageBody('look', 'n', [a, b], slots)).toEqual({
      content: 'look',
      nonce: 'n',
      attachments: [
        { id: '0', filename: 'cat.png', uploaded_filename: 'c/u/n0/cat.png' },
        { id: '1', filename: 'notes.txt', uploaded_filename: 'c/u/n1/notes.txt' },
      ],
    });
  });

  it('refuses to send when media left a file without a slot', () => {
    expect(() => messageBody('', 'n', [a, b], [{ id: '0', upload_url: 'u', upload_filename: 'x' }])).toThrow(
      /notes.txt/,
    );
  });
});
