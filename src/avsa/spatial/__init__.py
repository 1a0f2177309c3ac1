"""Spatial math shared by video and audio: directions, Ambisonics, projection, features.

Pure functions; imports nothing else of the project but :mod:`avsa.errors`.
Conventions: ``shared/docs/conventions.md`` (x forward, y left, z up; azimuth
positive to the left; ambiX W, Y, Z, X with SN3D).
"""
