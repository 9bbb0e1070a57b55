"""``faceapp bench`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

from faceapp.cli.main import main
from faceapp.core.errors import ExitCode


def test_bench_json_for_chosen_stages(capsys, celeba: Path) -> None:
    code = main(["bench", "--json", "--stages", "decode,align", "--repeat", "3", "--warmup", "0",
                 "--images", str(celeba / "07201")])
    data = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK
    assert [s["name"] for s in data["stages"]] == ["decode", "align"]
    assert all(s["median_ms"] > 0 and s["repeat"] == 3 for s in data["stages"])
    assert data["environment"]["cpu_count"] >= 1


def test_bench_text_table_and_list(capsys, celeba: Path) -> None:
    assert main(["bench", "--stages", "decode", "--repeat", "2", "--images", str(celeba / "07201")]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "median ms" in out and out.splitlines()[-1].startswith("decode")
    assert main(["bench", "--list"]) == ExitCode.OK
    assert "pipeline-video" in capsys.readouterr().out


def test_bench_unknown_stage_is_a_usage_error(capsys) -> None:
    assert main(["bench", "--stages", "decode,warp-drive"]) == ExitCode.USAGE
    assert "warp-drive" in capsys.readouterr().err
