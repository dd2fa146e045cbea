// A server's settings, Overview tab: its name and its icon. The icon is uploaded to media through
// the crop step (and set at once, as Discord does); removing it waits for Save.

import { useState, type FormEvent } from 'react';
import { useChat } from '../../chat/hooks';
import type { GuildState } from '../../guilds/store';
import { CropStep, ImagePicker, useAction } from '../dialogs';
import { GuildIcon } from './ServerRail';

export function Overview({ guild }: { guild: GuildState }) {
  const chat = useChat();
  const [name, setName] = useState(guild.name);
  /** The icon is to go on save ("Remove the icon"); an upload sets it at once instead. */
  const [removeIcon, setRemoveIcon] = useState(false);
  /** The image chosen for the icon, while the crop step is open. */
  const [cropping, setCropping] = useState<File | null>(null);
  const { run, busy, error } = useAction();
  const [saved, setSaved] = useState(false);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    void run(async () => {
      await chat.guilds.update(guild.id, {
        name: name.trim(),
        ...(removeIcon && guild.icon && { icon: null }),
      });
      setRemoveIcon(false);
      setSaved(true);
    });
  };
  return (
    <>
      <form className="stack" onSubmit={submit}>
        <label>
          Server name
          <input
            name="server-name"
            required
            minLength={2}
            maxLength={100}
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
        </label>
        <ImagePicker
          label="Server icon"
          name="server-icon-file"
          preview={<GuildIcon guild={removeIcon ? { ...guild, icon: null } : guild} size={64} />}
          onFile={setCropping}
        />
        {guild.icon && !removeIcon && (
          <button type="button" className="link" onClick={() => setRemoveIcon(true)}>
            Remove the icon (on save)
          </button>
        )}
        {error}
        {saved && (
          <p className="ok" role="status">
            Saved.
          </p>
        )}
        <button className="primary" type="submit" disabled={busy}>
          Save
        </button>
      </form>
      {/* Outside the form: the crop dialog's buttons must not submit the server's settings. */}
      {cropping && (
        <CropStep
          image={cropping}
          title="Crop the server icon"
          onClose={() => setCropping(null)}
          onApply={async (cropped) => {
            setSaved(false);
            await chat.guilds.uploadIcon(guild.id, cropped);
            setRemoveIcon(false);
            setCropping(null);
            setSaved(true);
          }}
        />
      )}
    </>
  );
}
