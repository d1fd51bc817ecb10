"""Errors of the training code (configs, data, checkpoints)."""
from __future__ import annotations


class TrainingError(Exception):
    """Base class of training errors that point at the user's input."""


class ConfigError(TrainingError, ValueError):
    """A config key that does not exist, or a value out of range."""


class DatasetError(TrainingError):
    """A missing or empty dataset, or a video with too few frames."""


class CheckpointError(TrainingError):
    """A checkpoint that is missing, corrupt, or of another architecture."""
