"""Moving data to training fast: the compact tar for a GPU machine, and batches prefetched in threads."""
from __future__ import annotations

import tarfile

import numpy as np
import torch

from training.compact_data import main
from training.dataset import EpisodeDataset, find_items


def test_compact_tar_keeps_every_video_and_fits_the_budget(real_prepared, tmp_path, capsys):
    source = find_items([real_prepared])
    out = tmp_path / "data.tar"
    assert main([str(real_prepared), "--out", str(out), "--stride", "3", "--quality", "70"]) == 0
    tar_dir = tmp_path / "unpacked"
    with tarfile.open(out) as tar:
        tar.extractall(tar_dir, filter="data")
    packed = find_items([tar_dir / real_prepared.name])
    assert [it.name for it in packed] == [it.name for it in source]
    for a, b in zip(source, packed):
        idx = np.arange(0, a.num_frames, 3)
        np.testing.assert_array_equal(b.landmarks, a.landmarks[idx])
        assert len(list((b.folder / "frames").iterdir())) == idx.size
    ds = EpisodeDataset([tar_dir / real_prepared.name], k_shots=4, resolution=64)
    assert ds.batch(seed=0, step=0, batch_size=1)["target_image"].shape[-1] == 64
    assert "every 3" in capsys.readouterr().out
    # The budget picks the stride; an existing output is never overwritten.
    small = tmp_path / "small.tar"
    assert main([str(real_prepared), "--out", str(small), "--budget-mib", "0.05"]) == 0
    assert small.stat().st_size <= 0.05 * 2**20 + tarfile.RECORDSIZE  # the last record is padded
    assert main([str(real_prepared), "--out", str(small)]) == 2


def test_prefetched_batches_equal_direct_ones(real_prepared):
    from training.prefetch import BatchPrefetcher

    ds = EpisodeDataset([real_prepared], k_shots=2, resolution=64)
    make = lambda s: ds.batch(seed=5, step=s, batch_size=2)  # noqa: E731
    with BatchPrefetcher(make, range(3, 9), workers=2) as batches:
        got = list(batches)
    assert [s for s, _ in got] == list(range(3, 9))
    for step, batch in got:
        want = make(step)
        assert all(torch.equal(batch[k], want[k]) for k in want)
