/** The worker's second track: ambience and "thinking" sounds, played apart from the voice. */
export const BACKGROUND_TRACK = 'background_audio';
