import { useState } from 'react';
import { AudioTrack, useTracks } from '@livekit/components-react';
import { Track } from 'livekit-client';
import { BACKGROUND_TRACK } from './audio';

/** The agent's `background_audio` track in an <audio> element of its own, with its own volume,
 * so a person can turn the ambience down without losing the voice. */
export function BackgroundAudioRenderer({ initialVolume = 0.5 }: { initialVolume?: number }) {
  const [volume, setVolume] = useState(initialVolume);
  const track = useTracks([Track.Source.Unknown, Track.Source.Microphone], {
    onlySubscribed: true,
  }).find((ref) => !ref.participant.isLocal && ref.publication.trackName === BACKGROUND_TRACK);
  return (
    <div className="background-audio">
      <label htmlFor="background-volume">Background volume</label>
      <input
        id="background-volume"
        type="range"
        min={0}
        max={1}
        step={0.05}
        value={volume}
        disabled={!track}
        onChange={(e) => setVolume(Number(e.target.value))}
      />
      {track ? <AudioTrack trackRef={track} volume={volume} data-audio="background" /> : null}
    </div>
  );
}
