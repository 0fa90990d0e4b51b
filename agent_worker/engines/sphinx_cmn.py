"""The utterance's own cepstral mean, while it is still being spoken.

The acoustic model was trained on features normalized by each utterance's own mean (its
feat.params say `-cmn batch`). A streaming decoder cannot wait for the whole utterance, so
pocketsphinx's live normalization uses a prior mean that the utterance moves only slowly (the
prior weighs as much as five seconds of speech), and the model's default prior is far from most
channels: measured own means of c0 run from 42 (telephone) over 53 (clean) to 71 (office noise)
against a prior of 40, and the telephone band's spectral tilt moves c1/c2 by 20-40. The first
question of a call was decoded through the wrong mean almost entirely.

So the decoder is told the mean of what it has heard so far, every few hundred milliseconds,
blended with the prior by frame counts. pocketsphinx has no call for "the mean so far", but its
live normalizer can report its running blend (prior times 500 frames plus the frames' sum, over
500 plus their count), from which the frames' own sum is recovered exactly, as long as we count
the frames it counted: it skips frames without energy, i.e. digital silence.

Imports only the standard library and pocketsphinx: it runs inside the decoder child process.
"""

from __future__ import annotations

import pocketsphinx

LIVE_WINDOW = 500
"""pocketsphinx's CMN_WIN: the frames its live normalizer counts the prior for."""
FRAME_BYTES = 320
"""One 10 ms feature frame of 16 kHz int16 audio."""
PRIOR_FRAMES = 100.0
"""How much the prior (the stream's last mean, else the model's default) still counts for once
speech is heard: one second of it, so half a second of speech already outweighs it two to one."""

_SILENT_FRAME = bytes(FRAME_BYTES)


def parse(mean: str) -> list[float]:
    return [float(x) for x in mean.split(",")]


def render(mean: list[float]) -> str:
    return ",".join(f"{x:.4f}" for x in mean)


class CmnTracker:
    """One utterance's mean, kept on one decoder from start_utt to end_utt."""

    def __init__(self, decoder: pocketsphinx.Decoder, prior: list[float]) -> None:
        self._decoder = decoder
        self._prior = prior
        self._told = prior  # what the decoder's normalizer was last set to
        self._sum = [0.0] * len(prior)  # the utterance's own frames, before the last refresh
        self._frames = 0
        self._since = 0  # frames counted since the last refresh
        self._partial = b""
        decoder.set_cmn(render(prior))

    def fed(self, pcm: bytes) -> None:
        """Counts the frames pocketsphinx will count in audio just given to the decoder."""
        data = self._partial + pcm
        whole = len(data) - len(data) % FRAME_BYTES
        for i in range(0, whole, FRAME_BYTES):
            if data[i : i + FRAME_BYTES] != _SILENT_FRAME:
                self._since += 1
        self._partial = data[whole:]

    def refresh(self) -> None:
        """Tells the decoder the utterance's own mean so far, blended with the prior."""
        if self._since == 0:
            return
        blend = parse(self._decoder.get_cmn(True))
        n = self._since
        for j, (b, told) in enumerate(zip(blend, self._told, strict=True)):
            self._sum[j] += (LIVE_WINDOW + n) * b - LIVE_WINDOW * told
        self._frames += n
        self._since = 0
        self._told = self.mean()
        self._decoder.set_cmn(render(self._told))

    def mean(self) -> list[float]:
        """The prior blended with the frames seen up to the last refresh."""
        total = PRIOR_FRAMES + self._frames
        return [(PRIOR_FRAMES * p + s) / total for p, s in zip(self._prior, self._sum, strict=True)]
