"""Spatial math shared by video and audio: directions, Ambisonics, projection, features.

Pure functions; imports nothing else of the project but :mod:`avsa.errors`
and the table of audio inputs (:mod:`avsa.audio_inputs`). Every rotation,
projection, pixel grid and resampling of the project is here; :mod:`avsa.media`
calls it. Conventions: ``docs/conventions.md`` (x forward, y left, z up;
azimuth positive to the left; ambiX W, Y, Z, X with SN3D).

Modules
-------
sphere
    Direction vectors, equirectangular pixel coordinates, rotation matrices
    (``yaw``/``pitch``/``roll``, ``front_rotation``).
ambisonics
    ``encode``, ``to_ambix``/``from_ambix``, ``rotate``, ``rotate_to_front``,
    ``mirror``, ``beamform``, ``to_stereo``, ``validity_ratio``, ``diagnose``.
projection
    ``gnomonic_rays``, ``gnomonic_crop`` (one sampling map per crop, shared by
    its frames), ``crop_coordinates``.
pixels
    NumPy ``equirect_directions`` (every pixel centre's direction),
    ``front_rotation_matrix`` and ``bilinear`` sampling, for the renderers and
    re-projections of :mod:`avsa.media`.
cubemap
    The equi-angular cubemap: ``FACES``, ``eac_directions``, ``direction_to_eac``.
features
    ``log_mel``, ``foa_intensity``, ``stereo_icf``, ``feature_stack``,
    ``feature_stack_mixed`` (features of linear mixtures from one analysis),
    ``mel_filterbank``, ``stft``.
"""
