// The crop step before an avatar or a server icon is uploaded, as Discord has: the chosen image
// under a square selection (round for an avatar) that the user moves by dragging or with the
// arrow keys and zooms with the slider or the wheel; "Apply" draws the selected square on a
// canvas (at most 1024 px a side: media makes 256 of it) and hands the PNG over, "Cancel" hands
// over nothing. Loaded on demand (dialogs.tsx `CropStep`), so the cropper is not in the initial
// load. The cropper's own stylesheet is bundled, not injected (the page's policy refuses inline
// styles); the image is a blob: URL, which the policy's img-src allows.

import { useEffect, useId, useState } from 'react';
import Cropper, { type Area, type Point } from 'react-easy-crop';
import 'react-easy-crop/react-easy-crop.css';
import { outputSide, squareIn } from './crop';
import { useAction } from './dialogs';
import { Modal } from './Modal';

/** Larger files are refused before the browser decodes them. */
export const MAX_SOURCE_BYTES = 20 * 1024 * 1024;
const MAX_ZOOM = 4;

export interface CropDialogProps {
  /** The file the user chose. */
  image: Blob;
  title: string;
  /** A round mask (avatars); the upload is square either way. */
  round?: boolean;
  /** Uploads the cropped image; an error it throws is shown in the dialog, which stays open. */
  onApply: (cropped: Blob) => Promise<void>;
  onClose: () => void;
}

export default function CropDialog({ image, title, round = false, onApply, onClose }: CropDialogProps) {
  const tooLarge = image.size > MAX_SOURCE_BYTES;
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (tooLarge) return;
    const u = URL.createObjectURL(image);
    setUrl(u);
    return () => URL.revokeObjectURL(u);
  }, [image, tooLarge]);
  const [crop, setCrop] = useState<Point>({ x: 0, y: 0 });
  const [zoom, setZoom] = useState(1);
  const [area, setArea] = useState<Area | null>(null);
  const [unreadable, setUnreadable] = useState(false);
  const { run, busy, error } = useAction();
  const hint = useId();
  const problem = tooLarge
    ? `This image is over ${MAX_SOURCE_BYTES / 1024 / 1024} MiB; choose a smaller one.`
    : unreadable
      ? 'This file is not an image this browser can show (PNG, JPEG, GIF or WebP).'
      : null;
  const apply = () =>
    void run(async () => {
      if (!url || !area) throw new Error('The image has not loaded yet.');
      await onApply(await drawSquare(url, area));
    });
  return (
    <Modal title={title} onClose={onClose}>
      <div className="stack">
        {problem ? (
          <p className="form-error" role="alert">
            {problem}
          </p>
        ) : (
          <>
            <div className="crop-stage">
              {url && (
                <Cropper
                  image={url}
                  crop={crop}
                  zoom={zoom}
                  maxZoom={MAX_ZOOM}
                  aspect={1}
                  objectFit="cover"
                  cropShape={round ? 'round' : 'rect'}
                  showGrid={!round}
                  keyboardStep={10}
                  disableAutomaticStylesInjection
                  onCropChange={setCrop}
                  onZoomChange={setZoom}
                  onCropComplete={(_, pixels) => setArea(pixels)}
                  mediaProps={{ onError: () => setUnreadable(true) }}
                  cropperProps={{ 'aria-label': 'Selection', 'aria-describedby': hint }}
                />
              )}
            </div>
            <p id={hint} className="muted small">
              Drag the image or use the arrow keys to move it; zoom with the slider or the wheel.
            </p>
            <label>
              Zoom
              <input
                name="crop-zoom"
                type="range"
                min={1}
                max={MAX_ZOOM}
                step={0.01}
                value={zoom}
                onChange={(e) => setZoom(Number(e.target.value))}
              />
            </label>
          </>
        )}
        {error}
        <div className="row">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="primary" onClick={apply} disabled={busy || !!problem || !area}>
            Apply
          </button>
        </div>
      </div>
    </Modal>
  );
}

/** The selected square of the image at `url`, drawn as a PNG of at most 1024 px a side. */
async function drawSquare(url: string, area: Area): Promise<Blob> {
  const img = new Image();
  img.src = url;
  await img.decode();
  const square = squareIn(area, img.naturalWidth, img.naturalHeight);
  const side = outputSide(square);
  const canvas = document.createElement('canvas');
  canvas.width = side;
  canvas.height = side;
  const g = canvas.getContext('2d');
  if (!g) throw new Error('This browser could not draw the image.');
  g.imageSmoothingQuality = 'high';
  g.drawImage(img, square.x, square.y, square.side, square.side, 0, 0, side, side);
  return new Promise((resolve, reject) =>
    canvas.toBlob(
      (b) => (b ? resolve(b) : reject(new Error('This browser could not draw the image.'))),
      'image/png',
    ),
  );
}
