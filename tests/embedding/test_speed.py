"""Speed helpers: they run and count correctly (no timing assertions: numbers depend on the machine)."""

from __future__ import annotations

import json
import time

import pytest
import torch

from faceapp.embedding.speed import (count_macs, main, others_cpu_share, param_count, profile_backbone, run_when_quiet,
                                     time_backbone, torch_threads, train_throughput)
from faceapp.nn.backbones import create_backbone


def test_count_macs_matches_a_hand_count_for_tiny() -> None:
    net = create_backbone("tiny", embedding_dim=128)
    # four 3x3 convs (stride 2 each: 56, 28, 14, 7 output side) + the 64 -> 128 linear layer
    expected = 56 * 56 * 16 * 27 + 28 * 28 * 32 * 144 + 14 * 14 * 64 * 288 + 7 * 7 * 64 * 576 + 64 * 128
    assert count_macs(net, 112) == expected
    assert param_count(net) == sum(p.numel() for p in net.parameters())
    assert net.training, "count_macs restores the training flag"


def test_mobilefacenet_size_is_close_to_the_paper() -> None:
    net = create_backbone("mobilefacenet", embedding_dim=128)
    # Chen et al. 2018, Table 1 / Sec. 3.3: 0.99 M parameters, 221 M multiply-adds
    assert 0.95e6 < param_count(net) < 1.1e6
    assert 200e6 < count_macs(net, 112) < 240e6


def test_time_backbone_reports_consistent_fields() -> None:
    r = time_backbone("tiny", batch_size=4, warmup=1, repeat=3, rounds=2, threads=1)
    assert r.backbone == "tiny" and r.batch_size == 4 and r.threads == 1 and r.device == "cpu"
    assert 0 < r.ms_per_batch <= r.ms_per_batch_p95
    assert r.ms_per_face == pytest.approx(r.ms_per_batch / 4)
    assert r.options["fuse"] is True and r.options["channels_last"] is True
    assert json.dumps(r.to_dict())


def test_thread_clock_uses_one_thread_and_cpu_time() -> None:
    r = time_backbone("tiny", batch_size=2, warmup=1, repeat=3, clock="thread", threads=2)
    assert r.clock == "thread" and r.threads == 1 and r.ms_per_batch > 0
    assert train_throughput("tiny", batch_size=4, steps=1, warmup=0, clock="thread") > 0
    with pytest.raises(ValueError, match="clock"):
        time_backbone("tiny", clock="sundial")


def test_threads_are_restored() -> None:
    before = torch.get_num_threads()
    with torch_threads(1) as used:
        assert used == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_train_throughput_and_profile_row() -> None:
    assert train_throughput("tiny", batch_size=8, steps=1, warmup=0) > 0
    row = profile_backbone("tiny", batch_sizes=(1, 2), train_batch=8, train_steps=1, repeat=2, rounds=2, width=8)
    assert row["options"] == {"width": 8} and row["mflops"] == 2 * row["mmac"]
    assert row["ms_per_face_b1"] > 0 and row["ms_per_face_b2"] > 0
    assert row["train_images_per_s"] > 0 and row["train_images_per_s_channels_last"] > 0
    assert row["cpu1_ms_per_face_b1"] > 0 and row["cpu1_train_images_per_s_channels_last"] > 0


def test_command_line_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tiny:width=8", "--repeat", "2", "--rounds", "1", "--train-steps", "0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["backbone"] == "tiny" and rows[0]["options"] == {"width": 8}
    assert "train_images_per_s" not in rows[0] and rows[0]["cpu1_ms_per_face_b32"] > 0
    assert main(["tiny", "--repeat", "2", "--rounds", "1", "--train-steps", "0", "--clock", "wall"]) == 0
    table = capsys.readouterr().out
    assert "| tiny | 0.07 | 10 |" in table and "| - / - |" in table


def test_others_cpu_share_and_quiet_runs() -> None:
    def nap(value: int) -> int:
        time.sleep(0.1)          # long enough for /proc/stat's 10 ms ticks
        return value

    out, share = others_cpu_share(lambda: nap(5))
    assert out == 5 and share is not None and 0.0 <= share <= 1.0
    calls: list[int] = []
    out, share = run_when_quiet(lambda: calls.append(1) or nap(len(calls)), max_others=1.01, timeout_s=5, poll_s=0.05)
    assert out == 1 and calls == [1], "a threshold above 100 % accepts the first run"
    out, share = run_when_quiet(lambda: nap(7), max_others=-1.0, timeout_s=0.3, poll_s=0.05)
    assert out == 7 and share is not None, "an impossible threshold still returns a result, with its share"
    row = profile_backbone("tiny", batch_sizes=(1,), train_steps=0, repeat=2, rounds=1, clocks=("wall",),
                           quiet=1.01, quiet_timeout_s=5)
    assert "others_cpu_max" in row and row["ms_per_face_b1"] > 0   # None when the run was shorter than a tick
