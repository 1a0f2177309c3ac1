"""The spherical-head binaural renderer against the analytic Woodworth delay and symmetry."""

import math

import numpy as np
import pytest
import torch

from avsa.evaluate.binaural import HEAD_RADIUS, SPEED_OF_SOUND, foa_to_binaural, head_transfer
from avsa.spatial import ambisonics

SR = 24000


def _noise(seconds=1.0, seed=0):
    return torch.as_tensor(np.random.default_rng(seed).standard_normal(int(SR * seconds)), dtype=torch.float32)


def _lag(left, right, max_lag=40):
    """Samples by which ``right`` lags ``left`` (peak of the cross-correlation)."""
    lags = np.arange(-max_lag, max_lag + 1)
    xc = [np.dot(left[max_lag:-max_lag], np.roll(right, -k)[max_lag:-max_lag]) for k in lags]
    return int(lags[int(np.argmax(xc))])


def test_source_on_the_left_reaches_the_left_ear_first_and_louder():
    foa = ambisonics.encode(_noise(), math.pi / 2, 0.0).numpy()
    left, right = foa_to_binaural(foa, SR)
    itd = (HEAD_RADIUS / SPEED_OF_SOUND) * (1 + math.pi / 2)  # Woodworth, 90° incidence
    assert _lag(left, right) == pytest.approx(itd * SR, abs=1.5)
    spec_l, spec_r = np.abs(np.fft.rfft(left)), np.abs(np.fft.rfft(right))
    high = np.fft.rfftfreq(left.size, 1 / SR) > 3000
    assert 20 * np.log10(spec_l[high].mean() / spec_r[high].mean()) > 6  # head shadow


def test_front_source_is_symmetric_and_mirroring_swaps_the_ears():
    front = foa_to_binaural(ambisonics.encode(_noise(), 0.0, 0.0).numpy(), SR)
    np.testing.assert_allclose(front[0], front[1], atol=1e-4 * np.abs(front).max())
    foa = ambisonics.encode(_noise(seed=1), math.radians(40), math.radians(10))
    direct = foa_to_binaural(foa.numpy(), SR)
    mirrored = foa_to_binaural(ambisonics.mirror(foa).numpy(), SR)
    np.testing.assert_allclose(mirrored[::-1], direct, atol=1e-3 * np.abs(direct).max())


def test_head_transfer_is_unity_at_dc_and_shadows_the_far_ear():
    h = head_transfer(math.pi / 2, 0.0, SR, 512)
    assert h.shape == (2, 257)
    np.testing.assert_allclose(np.abs(h[:, 0]), 1.0, atol=1e-9)
    assert np.abs(h[0, -1]) > 1.5 and np.abs(h[1, -1]) < 0.5  # near ear boosted, far ear shadowed
