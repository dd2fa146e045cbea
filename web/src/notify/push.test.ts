import { describe, expect, it } from 'vitest';
import { keyBytes } from './push';

describe('keyBytes', () => {
  it('decodes base64url without padding, as a VAPID public key is sent', () => {
    // 0xfb 0xff 0xbf: '+/+/' in base64, '-_-_' in base64url.
    expect(Array.from(keyBytes('-_-_'))).toEqual([0xfb, 0xff, 0xbf]);
    expect(Array.from(keyBytes('AQID'))).toEqual([1, 2, 3]);
    expect(Array.from(keyBytes('AQ'))).toEqual([1]);
  });
});
