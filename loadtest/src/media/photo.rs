//! A photo-like JPEG made on the spot: light and colour that change smoothly over the frame, as
//! in a picture, plus sensor-like noise in every pixel. A flat colour would compress to almost
//! nothing and decode in a blink; pure noise would be several times a camera's file: this sits
//! between, at about a phone photo's size.

use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};

/// The JPEG quality a phone camera writes at about.
const QUALITY: u8 = 90;
/// Noise in each channel, at most this far either side of the smooth picture.
const NOISE: i32 = 12;

/// A `width` by `height` JPEG; `seed` varies the picture and its noise.
pub fn jpeg(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut noise = move || {
        // xorshift64: cheap, and the same picture for the same seed.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 32) as i32 % (NOISE + 1)
    };
    let phase = (seed % 97) as f32 * 0.37;
    let (w, h) = (width as f32, height as f32);
    let image = RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / w, y as f32 / h);
        let smooth = [
            128.0 + 90.0 * (fx * 6.3 + phase).sin() * (fy * 4.1).cos(),
            120.0 + 70.0 * ((fx + fy) * 9.0 + phase).sin(),
            100.0 + 80.0 * (fx * 3.0 - fy * 7.0).cos() * (fx * fy * 20.0 + phase).sin(),
        ];
        Rgb(smooth.map(|c| (c as i32 + noise()).clamp(0, 255) as u8))
    });
    let mut out = Vec::new();
    image
        .write_with_encoder(JpegEncoder::new_with_quality(&mut out, QUALITY))
        .expect("encoding to memory cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_photo_is_a_jpeg_of_the_size_asked_for() {
        let bytes = jpeg(64, 48, 7);
        let image = image::load_from_memory(&bytes).unwrap();
        assert_eq!((image.width(), image.height()), (64, 48));
        assert_eq!(&bytes[..2], &[0xff, 0xd8]);
    }

    #[test]
    fn the_same_seed_makes_the_same_photo_and_another_seed_another() {
        assert_eq!(jpeg(32, 32, 1), jpeg(32, 32, 1));
        assert_ne!(jpeg(32, 32, 1), jpeg(32, 32, 2));
    }

    #[test]
    fn the_photo_is_not_a_flat_colour() {
        let image = image::load_from_memory(&jpeg(64, 64, 3)).unwrap().to_rgb8();
        let first = image.get_pixel(0, 0);
        let differing = image.pixels().filter(|p| *p != first).count();
        assert!(differing > 64 * 64 / 2, "only {differing} pixels differ");
    }
}
