"""The three networks of Zakharov et al. 2019, the warping generator, and their building blocks."""
from .discriminator import Discriminator
from .embedder import Embedder
from .generator import Generator, PersonalisedGenerator
from .mouth_discriminator import MouthDiscriminator
from .warp_generator import WarpGenerator

__all__ = ["Embedder", "Generator", "PersonalisedGenerator", "Discriminator", "MouthDiscriminator", "WarpGenerator"]
