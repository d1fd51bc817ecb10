"""The three networks of Zakharov et al. 2019 and their building blocks."""
from .discriminator import Discriminator
from .embedder import Embedder
from .generator import Generator, PersonalisedGenerator

__all__ = ["Embedder", "Generator", "PersonalisedGenerator", "Discriminator"]
