import { AudioTrack, useTracks } from '@livekit/components-react';
import { getTrackReferenceId } from '@livekit/components-core';
import { Track } from 'livekit-client';
import { BACKGROUND_TRACK } from './audio';

/**
 * LiveKit's RoomAudioRenderer, less the background track: RoomAudioRenderer plays every remote
 * audio track, so `background_audio` would sound twice (there and in BackgroundAudioRenderer) and
 * its own volume would mean nothing. Same LiveKit parts (useTracks, AudioTrack), one filter more.
 */
export function VoiceAudioRenderer() {
  const tracks = useTracks(
    [Track.Source.Microphone, Track.Source.ScreenShareAudio, Track.Source.Unknown],
    { updateOnlyOn: [], onlySubscribed: true },
  ).filter(
    (ref) =>
      !ref.participant.isLocal &&
      ref.publication.kind === Track.Kind.Audio &&
      ref.publication.trackName !== BACKGROUND_TRACK,
  );
  return (
    <div style={{ display: 'none' }} data-audio="voice">
      {tracks.map((ref) => (
        <AudioTrack key={getTrackReferenceId(ref)} trackRef={ref} />
      ))}
    </div>
  );
}
