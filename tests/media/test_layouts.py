"""Channel presets: the mapping of each named layout and the channel-count errors."""

from __future__ import annotations

import numpy as np
import pytest

from avsa.errors import InputError, MediaError
from avsa.media import layouts

RAW6 = np.arange(6 * 5, dtype=np.float32).reshape(6, 5) + 1


def test_mappings_follow_the_conventions():
    raw4 = RAW6[:4]
    np.testing.assert_array_equal(layouts.apply(raw4, "ambix"), raw4)
    c = raw4  # FuMa W/√2, X, Y, Z → ambiX [√2·c0, c2, c3, c1]
    np.testing.assert_allclose(layouts.apply(raw4, "fuma"), np.stack([np.sqrt(2) * c[0], c[2], c[3], c[1]]), rtol=1e-6)
    np.testing.assert_allclose(layouts.apply(raw4, "n3d"), raw4 / np.array([1, np.sqrt(3), np.sqrt(3), np.sqrt(3)])[:, None],
                               rtol=1e-6)
    np.testing.assert_array_equal(layouts.apply(RAW6, "youtube-aac"), RAW6[[2, 1, 4, 0]])
    np.testing.assert_array_equal(layouts.apply(RAW6, "ambix+headlocked"), RAW6[:4])
    np.testing.assert_array_equal(layouts.apply(RAW6, "raw"), RAW6)
    assert layouts.apply(RAW6, "youtube-aac").dtype == np.float32


@pytest.mark.parametrize("layout, channels", [("ambix", 2), ("fuma", 6), ("youtube-aac", 4), ("ambix+headlocked", 3)])
def test_wrong_channel_count_names_file_and_suggests_a_layout(layout, channels):
    with pytest.raises(MediaError) as info:
        layouts.apply(np.zeros((channels, 10)), layout, path="clip.m4a")
    message = str(info.value)
    assert message.startswith("clip.m4a: ") and f"has {channels} audio channel" in message and repr(layout) in message
    assert "--layout" in message
    with pytest.raises(InputError):
        layouts.check_channels(None, channels, layout)


def test_unknown_layout():
    with pytest.raises(InputError, match="unknown audio layout 'ambi'"):
        layouts.apply(RAW6[:4], "ambi")
