"""The release step: a trained checkpoint -> the SDK's bundled default model.

It sits above both ``training`` (checkpoints, the mean identity) and ``export`` (the package), so
that neither imports the other's callers: ``export`` imports ``training``; ``training`` imports
neither ``export`` nor ``release``.
"""
