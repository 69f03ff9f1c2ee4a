"""scripts/stage_weights.py: a file split into parts here joins byte for byte on the other side,
one carried part at a time, and a missing or corrupt part is named in one line with exit 2."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "stage_weights.py"
sys.path.insert(0, str(ROOT / "scripts"))
from stage_weights import MIB, main          # noqa: E402


@pytest.fixture
def staged(tmp_path):
    """A 2.5 MiB file of random bytes split into 1 MiB parts: (original bytes, staging folder here)."""
    data = os.urandom(2 * MIB + MIB // 2)
    src = tmp_path / "model.gguf"
    src.write_bytes(data)
    assert main(["split", str(src), "--part-mib", "1", "--out", str(tmp_path / "here")]) == 0
    return data, tmp_path / "here"


def carry(here: Path, device: Path, *names: str) -> None:
    """What one `run` call does to the named paths: copies them over what is there."""
    device.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(here / name, device / name)


def join(device: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "join", str(device)], capture_output=True, text=True)


def test_split_then_join_part_by_part_gives_back_the_same_bytes(staged, tmp_path):
    data, here = staged
    manifest = json.loads((here / "manifest.json").read_text())
    assert [p["name"] for p in manifest["parts"]] == ["part01", "part02", "part03"]
    assert [p["size"] for p in manifest["parts"]] == [MIB, MIB, MIB // 2]
    assert manifest["size"] == len(data) and manifest["sha256"] == hashlib.sha256(data).hexdigest()
    device = tmp_path / "device"
    for i, name in enumerate(["part01", "part02"]):          # the calls before the last one
        carry(here, device, *(["manifest.json"] if i == 0 else []), name)
        res = join(device)
        assert res.returncode == 2 and f"{i + 1} of 3 parts verified" in res.stderr
        assert not (device / "model.gguf").exists()
    carry(here, device, "part03")
    res = join(device)
    assert res.returncode == 0, res.stderr
    assert (device / "model.gguf").read_bytes() == data
    for part in device.glob("part*"):           # a later call carries no parts: the joined file is checked
        part.unlink()
    assert join(device).returncode == 0


def test_a_missing_part_is_named_in_one_line(staged, tmp_path):
    _, here = staged
    device = tmp_path / "device"
    carry(here, device, "manifest.json", "part01", "part03")
    res = join(device)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "2 of 3 parts verified; missing: part02; carry" in res.stderr      # part01 and part03 are good
    assert f"carry {device / 'part02'}" in res.stderr


def test_a_corrupt_part_of_the_right_size_is_named_and_nothing_is_joined(staged, tmp_path):
    _, here = staged
    device = tmp_path / "device"
    carry(here, device, "manifest.json", "part01", "part02", "part03")
    raw = bytearray((device / "part02").read_bytes())
    raw[1234] ^= 0xFF                           # same size: only the hash can tell
    (device / "part02").write_bytes(raw)
    res = join(device)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "2 of 3 parts verified" in res.stderr and "corrupt (size or sha256 differs): part02;" in res.stderr
    assert not (device / "model.gguf").exists()


def test_a_manifest_from_another_split_fails_the_whole_file_check(staged, tmp_path):
    _, here = staged
    device = tmp_path / "device"
    carry(here, device, "manifest.json", "part01", "part02", "part03")
    manifest = json.loads((device / "manifest.json").read_text())
    manifest["sha256"] = "0" * 64
    (device / "manifest.json").write_text(json.dumps(manifest))
    res = join(device)
    assert res.returncode == 2 and "split again" in res.stderr
    assert sorted(p.name for p in device.iterdir()) == ["manifest.json", "part01", "part02", "part03"]


def test_splitting_again_leaves_no_stale_part(staged, tmp_path):
    data, here = staged
    assert main(["split", str(tmp_path / "model.gguf"), "--part-mib", "2", "--out", str(here)]) == 0
    assert sorted(p.name for p in here.glob("part*")) == ["part01", "part02"]
    assert (here / "part01").read_bytes() + (here / "part02").read_bytes() == data


@pytest.mark.parametrize("argv, field", [
    (["split", "{tmp}/model.gguf", "--part-mib", "0"], "--part-mib"),
    (["split", "{tmp}/model.gguf", "--part-mib", "64"], "--part-mib"),
    (["split", "{tmp}/no-such.gguf"], "no file"),
    (["join", "{tmp}"], "manifest.json"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv, field):
    (tmp_path / "model.gguf").write_bytes(b"x" * 10)
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and field in err[0]
    assert not list(tmp_path.glob("**/part*"))
