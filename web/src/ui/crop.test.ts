import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { MAX_OUTPUT_SIDE, outputSide, squareIn } from './crop';

describe('the square selected for an avatar or icon', () => {
  test('an area inside the image is kept, rounded to whole pixels', () => {
    expect(squareIn({ x: 100.3, y: 50.6, width: 200.2, height: 200.2 }, 600, 300)).toEqual({
      x: 100,
      y: 51,
      side: 200,
    });
  });

  test('an area reaching past an edge is moved back inside the image', () => {
    expect(squareIn({ x: -3, y: 290, width: 150, height: 150 }, 600, 300)).toEqual({
      x: 0,
      y: 150,
      side: 150,
    });
    expect(squareIn({ x: 560, y: -1, width: 100, height: 100 }, 600, 300)).toEqual({
      x: 500,
      y: 0,
      side: 100,
    });
  });

  test('an area larger than the image becomes its largest centred square', () => {
    expect(squareIn({ x: -50, y: -50, width: 700, height: 700 }, 600, 300)).toEqual({
      x: 150,
      y: 0,
      side: 300,
    });
  });

  test('a slightly oblong area is squared around its centre on its shorter side', () => {
    expect(squareIn({ x: 10, y: 10, width: 102, height: 100 }, 400, 400)).toEqual({
      x: 11,
      y: 10,
      side: 100,
    });
  });

  test('a one-pixel image gives its one pixel', () => {
    expect(squareIn({ x: 0, y: 0, width: 1, height: 1 }, 1, 1)).toEqual({ x: 0, y: 0, side: 1 });
  });

  test('an area that is not a number is the centred square', () => {
    expect(squareIn({ x: NaN, y: 0, width: Infinity, height: 10 }, 300, 200)).toEqual({
      x: 50,
      y: 0,
      side: 200,
    });
  });

  test('whatever the area, the square is whole, at least a pixel and inside the image', () => {
    const n = fc.double({ min: -5000, max: 5000, noNaN: true });
    fc.assert(
      fc.property(
        n,
        n,
        n,
        n,
        fc.integer({ min: 1, max: 4000 }),
        fc.integer({ min: 1, max: 4000 }),
        (x, y, w, h, W, H) => {
          const s = squareIn({ x, y, width: w, height: h }, W, H);
          expect(Number.isInteger(s.x) && Number.isInteger(s.y) && Number.isInteger(s.side)).toBe(true);
          expect(s.side).toBeGreaterThanOrEqual(1);
          expect(s.x).toBeGreaterThanOrEqual(0);
          expect(s.y).toBeGreaterThanOrEqual(0);
          expect(s.x + s.side).toBeLessThanOrEqual(W);
          expect(s.y + s.side).toBeLessThanOrEqual(H);
        },
      ),
    );
  });
});

describe('the size the square is drawn at', () => {
  test('a small square keeps its size: it is never upscaled', () => {
    expect(outputSide({ x: 0, y: 0, side: 300 })).toBe(300);
  });

  test('a large square is drawn at most 1024 pixels a side', () => {
    expect(outputSide({ x: 0, y: 0, side: 4000 })).toBe(MAX_OUTPUT_SIDE);
    expect(MAX_OUTPUT_SIDE).toBe(1024);
  });
});
